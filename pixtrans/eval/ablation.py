"""MSG U-Net resolution ablation (the MSG U-Net paper's §3.2, Tables 2 and 3): SSIM for every input resolution x
output scale.

For each input resolution the source (label ids or image) is downsampled to that pyramid scale and
nearest-upsampled back to full size before it is fed to the generator, so only the information of the low-res
input is left; every output scale is compared (SSIM) with the target resized to that scale. Writes
``ablation.csv`` (rows: input resolution, columns: output resolution), ``ablation.json`` and ``ablation.png``.

    pixtrans ablation runs/msg --data data/synth --out runs/msg/ablation
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import ConfigError, PixtransError


def degrade(t: Tensor, factor: int) -> Tensor:
    """``t`` (B, C, H, W) at ``1/factor`` of its size and back: ids/instances nearest, images area-averaged."""
    if factor == 1:
        return t
    h, w = t.shape[-2:]
    small = (max(1, h // factor), max(1, w // factor))
    if t.is_floating_point():
        low = F.interpolate(t, size=small, mode="area")
    else:
        low = F.interpolate(t.float(), size=small, mode="nearest")
    up = F.interpolate(low, size=(h, w), mode="nearest")
    return up if t.is_floating_point() else up.round().to(t.dtype)


def ssim_per_image(fake: Tensor, real: Tensor) -> list[float]:
    """SSIM of each image pair in [-1, 1] with :mod:`pixtrans.eval.metrics`' conventions (clamped to [0, 1],
    Gaussian window 11 / sigma 1.5, data range 1; NaN below its minimum size) without the costly VIF."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    from .metrics import SSIM_MIN_SIZE

    if min(fake.shape[-2:]) < SSIM_MIN_SIZE:
        return [math.nan] * fake.shape[0]
    p, t = ((fake.float().clamp(-1, 1) + 1) / 2).cpu(), ((real.float().clamp(-1, 1) + 1) / 2).cpu()
    return structural_similarity_index_measure(p, t, data_range=1.0, reduction="none").view(-1).tolist()


def _size_label(h: int, w: int) -> str:
    return f"{w}x{h}"


@torch.no_grad()
def ablation_table(translator, data_root: str | Path, max_items: int = 0, progress: bool = True) -> dict:
    """The SSIM table of a loaded MSG U-Net :class:`~pixtrans.infer.translator.Translator` on a test split.

    Returns ``{"inputs": [labels], "outputs": [labels], "ssim": [[...]] (inputs x outputs), "n": images}``,
    both axes coarse to fine and labelled by the first test image's sizes.
    """
    from ..data.datasets import build_dataset

    model = translator.model
    if not model.multi_scale:
        raise ConfigError(f"ablation: {translator.path} is a {translator.family} model; it needs an MSG U-Net")
    n_in = model.cfg.n_scales
    data = translator.cfg.data.model_copy(update={"root": str(data_root), "max_items": max_items})
    ds = build_dataset(data, data.test_split, train=False, require_target=True)
    if len(ds) == 0:
        raise PixtransError(f"{data_root}: no '{data.test_split}' items found for layout {data.layout!r}")
    sums = [[0.0] * model.n_outputs for _ in range(n_in)]
    counts = [[0] * model.n_outputs for _ in range(n_in)]
    in_labels: list[str] = []
    out_labels: list[str] = []
    n = 0
    for batch in tqdm(DataLoader(ds, batch_size=1), desc="ablation", disable=not progress, dynamic_ncols=True):
        n += batch["input"].shape[0]
        h, w = batch["input"].shape[-2:]
        if not in_labels:
            in_labels = [_size_label(max(1, h // 2**k), max(1, w // 2**k)) for k in range(n_in - 1, -1, -1)]
        for i in range(n_in):  # coarsest input first
            factor = 2 ** (n_in - 1 - i)
            low = {k: degrade(v, factor) if k in ("input", "inst") else v for k, v in batch.items()}
            x = model.prepare(low)
            res = translator.translate_tensor(x)
            if not out_labels:
                out_labels = [_size_label(*s.shape[-2:]) for s in res.scales]
            for j, out in enumerate(res.scales):
                target = F.interpolate(x["target"].float(), size=out.shape[-2:], mode="area")
                for v in ssim_per_image(out, target):
                    if not math.isnan(v):
                        sums[i][j] += v
                        counts[i][j] += 1
    table = [
        [sums[i][j] / counts[i][j] if counts[i][j] else math.nan for j in range(len(sums[i]))] for i in range(n_in)
    ]
    return {"inputs": in_labels, "outputs": out_labels, "ssim": table, "n": n}


def write_ablation(result: dict, out: str | Path, title: str = "MSG U-Net SSIM"):
    """``ablation.csv``, ``ablation.json`` and the heat map ``ablation.png`` in ``out``; returns the paths."""
    from .plots import plot_heatmap

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "ablation.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["input \\ output", *result["outputs"]])
        for label, row in zip(result["inputs"], result["ssim"]):
            w.writerow([label, *(f"{v:.4f}" if not math.isnan(v) else "" for v in row)])
    json_path = out / "ablation.json"
    json_path.write_text(json.dumps(result, indent=2))
    png = plot_heatmap(
        result["ssim"],
        result["inputs"],
        result["outputs"],
        out / "ablation.png",
        title=title,
        fmt=".3f",
        xlabel="output resolution",
        ylabel="input resolution",
    )
    return {"csv": csv_path, "json": json_path, "png": Path(png)}


def ablation(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    max_items: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Load ``checkpoint``, compute the table on ``data_dir``'s test split and write it to ``out_dir``."""
    from ..infer.translator import load

    t = load(checkpoint, device=device)
    result = ablation_table(t, data_dir, max_items=max_items, progress=progress)
    result["checkpoint"] = str(t.path) if t.path else str(checkpoint)
    result["files"] = {k: str(v) for k, v in write_ablation(result, out_dir).items()}
    return result


def _cmd(a) -> None:
    t_data = a.data or None
    if t_data is None:
        from ..infer.translator import load

        t_data = load(a.checkpoint, device="cpu").cfg.data.root
    res = ablation(a.checkpoint, t_data, a.out, max_items=a.max_items, device=a.device)
    width = max(len(s) for s in res["inputs"] + ["input"])
    print(f"SSIM (rows: input resolution, columns: output resolution), {res['n']} images")
    print(" " * width + "  " + "  ".join(f"{c:>9}" for c in res["outputs"]))
    for label, row in zip(res["inputs"], res["ssim"]):
        print(f"{label:>{width}}  " + "  ".join(f"{v:>9.4f}" for v in row))
    print(f"wrote {res['files']['csv']} and {res['files']['png']}")


def add_commands(subparsers) -> None:
    """``pixtrans ablation CKPT --data D --out O``."""
    p = subparsers.add_parser(
        "ablation",
        help="MSG U-Net: SSIM table input resolution x output resolution (CSV + heat map)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("checkpoint", help="MSG U-Net run or checkpoint folder")
    p.add_argument("--data", default="", help="dataset root with a test split (default: the one in the config)")
    p.add_argument("--out", required=True, help="output folder for ablation.csv / .json / .png")
    p.add_argument("--max-items", type=int, default=0, help="use at most this many test images (0 = all)")
    p.add_argument("--device", default="auto")
    p.set_defaults(fn=_cmd)
