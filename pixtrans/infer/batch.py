"""Batch translation at scale: many inputs, sharded over ``torchrun`` ranks and nodes, restartable, with a manifest.

    torchrun --nproc-per-node 4 -m pixtrans translate runs/city labels/ --out synth/
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m pixtrans translate runs/city labels/ --out /shared/synth/

Every rank lists the same inputs in the same (sorted) order and takes every ``world``-th one, so the shards cover
each input exactly once. An output is written to a temporary name and renamed, so a file under its final name is
always complete; outputs already written by the same checkpoint with the same requested style are skipped, which
makes a crashed or killed job restartable by running the same command again. Rank 0 shows one progress bar and,
at the end, gathers every rank's records and writes ``manifest.jsonl`` (input, output, style per line, in input
order). Without torchrun it is one process and the same code path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..errors import PixtransError

MANIFEST = "manifest.jsonl"
# PNG text keys written with every output: the style used (reproduces it), the checkpoint, and what was asked for
STYLE_KEY, CHECKPOINT_KEY = "pixtrans_style", "pixtrans_checkpoint"
SOURCE_KEY, REQUEST_KEY, SCALES_KEY = "pixtrans_source", "pixtrans_request", "pixtrans_scales"


def shard(items: Sequence, rank: int, world: int) -> list:
    """Rank ``rank``'s share of ``items``: every ``world``-th item from ``rank`` (sizes differ by at most one)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    return list(items[rank::world])


def output_paths(src: Path, out_dir: Path, n_scales: int = 0) -> list[Path]:
    """Where ``src``'s output goes: ``out_dir/<stem>.png``; with ``n_scales`` one ``<stem>_scale<i>.png`` each."""
    if n_scales:
        return [out_dir / f"{src.stem}_scale{i}.png" for i in range(n_scales)]
    return [out_dir / f"{src.stem}.png"]


def check_unique(inputs: Sequence[Path]) -> None:
    """Two inputs with the same file stem would write the same output: an error naming them."""
    seen: dict[str, Path] = {}
    for f in inputs:
        if f.stem in seen:
            raise PixtransError(f"{seen[f.stem]} and {f} would both write {f.stem}.png; rename one or translate apart")
        seen[f.stem] = f


def _request(style: dict | None, tile: int) -> str:
    return json.dumps({"style": style or {}, "tile": tile}, sort_keys=True, default=str)


def _read_info(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            return dict(im.info)
    except OSError:  # unreadable: translate again
        return None


def _done(src: Path, out: Path, all_scales: bool, source: str, request: str) -> tuple[list[Path], dict] | None:
    """(paths, recorded style) when ``src``'s outputs are complete results of this checkpoint and request."""
    first = output_paths(src, out, 1 if all_scales else 0)[0]
    info = _read_info(first)
    if info is None or info.get(SOURCE_KEY) != source or info.get(REQUEST_KEY) != request:
        return None
    paths = output_paths(src, out, int(info.get(SCALES_KEY, "1")) if all_scales else 0)
    if not all(p.is_file() for p in paths):
        return None
    return paths, json.loads(info.get(STYLE_KEY, "{}"))


def _save(img: Image.Image, path: Path, meta: dict[str, str], rank: int) -> None:
    """Write ``img`` as PNG atomically: a temporary file in the same folder, then a rename."""
    info = PngInfo()
    for k, v in meta.items():
        info.add_text(k, v)
    tmp = path.with_name(f".{path.name}.{rank}.tmp")
    img.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def translate_files(
    translator,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    rank: int = 0,
    world: int = 1,
    style: dict | None = None,
    tile: int = 0,
    instances: Callable[[Any, Path], Path | None] | None = None,
    all_scales: bool = False,
    progress: bool = True,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """Translate this rank's shard of ``inputs`` into ``out_dir``; returns one record per input of the shard.

    A record is ``{"input", "output", "style"}`` (``output`` is a list with ``all_scales``); inputs whose outputs
    already hold this checkpoint's result for the same request are not translated again (their recorded style is
    read back from the PNG). ``instances(translator, path)`` gives an input's instance map. The progress bar (rank 0
    only) counts rank 0's items times ``world``, an estimate of all ranks' progress (shards differ by at most one).
    """
    from tqdm import tqdm

    inputs = sorted(Path(p) for p in inputs)
    check_unique(inputs)
    mine = shard(inputs, rank, world)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = str(Path(translator.path).resolve()) if translator.path else ""
    request = _request(style, tile)
    meta = {CHECKPOINT_KEY: translator.path.name if translator.path else "", SOURCE_KEY: source, REQUEST_KEY: request}
    total = len(inputs) if total is None else total
    bar = tqdm(total=total, disable=not (progress and rank == 0), unit="img", dynamic_ncols=True)
    records, skipped = [], 0
    try:
        for f in mine:
            done = _done(f, out, all_scales, source, request)
            if done is not None:
                paths, recorded = done
                skipped += 1
            else:
                inst = instances(translator, f) if instances else None
                imgs = translator.translate(f, instances=inst, style=style or None, tile=tile, all_scales=all_scales)
                imgs = imgs if isinstance(imgs, list) else [imgs]
                paths = output_paths(f, out, len(imgs) if all_scales else 0)
                extra = {SCALES_KEY: str(len(imgs))} if all_scales else {}
                # the first file is checked on restart: written last, so it exists only when the others do
                for img, path in reversed(list(zip(imgs, paths))):
                    _save(img, path, {STYLE_KEY: img.info.get(STYLE_KEY, "{}"), **meta, **extra}, rank)
                recorded = json.loads(imgs[-1].info.get(STYLE_KEY, "{}"))
            outs = [str(p) for p in paths]
            records.append({"input": str(f), "output": outs if all_scales else outs[0], "style": recorded})
            bar.update(min(world, total - bar.n))
    finally:
        bar.close()
    if rank == 0 and skipped and progress:
        print(f"{skipped} of rank 0's {len(mine)} inputs were already translated (skipped)")
    return records


def write_manifest(records: list[dict], out_dir: str | Path) -> Path:
    """``out_dir/manifest.jsonl``: one JSON object per input, sorted by input path (written atomically)."""
    path = Path(out_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    with open(tmp, "w") as f:
        for r in sorted(records, key=lambda r: r["input"]):
            f.write(json.dumps(r, default=str) + "\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------- torchrun
def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def rank_device(device: str) -> str:
    """``auto`` under torchrun on GPUs is this process's own GPU (``cuda:LOCAL_RANK``), not every rank's cuda:0."""
    if device == "auto" and torch.cuda.is_available():
        return f"cuda:{dist_env()[2]}"
    return device


def run(
    load_translator,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    device: str = "auto",
    **kw,
) -> Path | None:
    """The ``translate`` command on every rank: start the process group under torchrun (NCCL on GPUs, gloo on CPU),
    translate this rank's shard, gather the records on rank 0 and write the manifest there (its path; None on the
    other ranks). ``load_translator(device)`` returns the translator; ``kw`` goes to :func:`translate_files`."""
    import torch.distributed as dist

    rank, world, local = dist_env()
    device = rank_device(device)
    started = False
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        started = True
    try:
        translator = load_translator(device)
        records = translate_files(translator, inputs, out_dir, rank=rank, world=world, **kw)
        if world > 1:
            gathered: list | None = [None] * world if rank == 0 else None
            dist.gather_object(records, gathered, dst=0)
            if rank != 0:
                return None
            records = [r for part in gathered or [] for r in part]
        return write_manifest(records, out_dir)
    finally:
        if started:
            dist.destroy_process_group()
