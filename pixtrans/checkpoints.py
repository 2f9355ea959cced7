"""Checkpoints: a folder with the typed config, safetensors weights, JSON metadata and a training-state file.

Writes are atomic: everything goes into a temporary folder that is renamed into place, then the run's ``latest``
pointer is replaced with ``os.replace``. A run killed at any moment leaves the previous checkpoint intact.

The same folder without ``train_state.pt`` and with only the generator side's weights is an *inference folder*
(:func:`save_inference_folder`, ``pixtrans export RUN --format pixtrans``); both load with ``pixtrans.load``, which
reads only the tensors it needs (:func:`read_weights`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from .config import ExperimentConfig, config_from_dict
from .errors import CheckpointError

CONFIG, WEIGHTS, META, STATE, LATEST = "config.yaml", "model.safetensors", "meta.json", "train_state.pt", "latest"


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file in the same folder, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_folder(
    final: Path, cfg: ExperimentConfig, weights: dict[str, torch.Tensor], meta: dict, train_state: dict | None = None
) -> None:
    """Write a checkpoint folder into a temporary sibling, fsync it, then swap it into ``final``; an existing
    ``final`` is moved aside first and removed only after the new one is in place (never the only good copy)."""
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp_{final.name}_"))
    old = final.parent / f".old_{final.name}_{os.getpid()}"
    try:
        (tmp / CONFIG).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / WEIGHTS))
        (tmp / META).write_text(json.dumps({**meta, "family": cfg.family}, indent=2, default=float))
        if train_state is not None:
            torch.save(train_state, tmp / STATE)
        for f in tmp.iterdir():
            _fsync(f)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    cfg: ExperimentConfig,
    weights: dict[str, torch.Tensor],
    meta: dict,
    train_state: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write ``run_dir/checkpoints/step_XXXXXXX`` atomically and point ``run_dir/latest`` at it."""
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    _write_folder(final, cfg, weights, {**meta, "step": step}, train_state)
    atomic_write_text(run_dir / LATEST, final.name + "\n")
    _prune(root, keep, final)
    return final


def _prune(root: Path, keep: int, newest: Path) -> None:
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - max(keep, 1))]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder (follows ``latest``) or a checkpoint folder -> the checkpoint folder."""
    p = Path(path)
    if (p / WEIGHTS).is_file():
        return p
    if (p / LATEST).is_file():
        ck = p / "checkpoints" / (p / LATEST).read_text().strip()
        if (ck / WEIGHTS).is_file():
            return ck
        raise CheckpointError(f"{p}: 'latest' points to {ck.name}, which is missing or incomplete")
    if p.is_dir() and (p / "checkpoints").is_dir():
        steps = sorted(c for c in (p / "checkpoints").glob("step_*") if (c / WEIGHTS).is_file())
        if steps:
            return steps[-1]
    raise CheckpointError(
        f"{p}: not a pixtrans run or checkpoint folder (expected {WEIGHTS} or a 'latest' file); "
        "for official .pth files use `pixtrans import`"
    )


def load_checkpoint_files(path: str | Path) -> tuple[Path, ExperimentConfig, dict[str, torch.Tensor], dict]:
    """Read config, all weights and metadata of a checkpoint (or a run's latest one)."""
    ck, cfg, meta = read_checkpoint(path)
    return ck, cfg, read_weights(ck, lambda _: True), meta


def read_checkpoint(path: str | Path) -> tuple[Path, ExperimentConfig, dict]:
    """Config and metadata of a checkpoint (or a run's latest one), without its weights."""
    ck = resolve_checkpoint(path)
    try:
        raw = yaml.safe_load((ck / CONFIG).read_text())
        meta = json.loads((ck / META).read_text()) if (ck / META).is_file() else {}
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise CheckpointError(f"{ck}: cannot read checkpoint ({err})") from None
    return ck, config_from_dict(raw, str(ck / CONFIG)), meta


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}  # fmt: skip


def _header(f) -> tuple[dict, int]:
    n = int.from_bytes(f.read(8), "little")
    if not 2 <= n <= 100_000_000:
        raise ValueError("not a safetensors file (bad header length)")
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def weight_keys(ck: Path) -> list[str]:
    """The tensor names in ``ck``'s weights (read from the file header only)."""
    try:
        with open(ck / WEIGHTS, "rb") as f:
            return list(_header(f)[0])
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{ck}: cannot read {WEIGHTS} ({err}); the file is damaged") from None


def read_weights(ck: Path, want: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """Only the tensors of ``ck``'s weights whose key ``want`` accepts; the others are never read from disk.

    Each tensor is read straight into its own freshly allocated storage (safetensors' layout: a JSON header, then
    raw little-endian data), so the weights are held once, aligned as any parameter, with no memory-mapped copy
    beside them (``safetensors.safe_open`` keeps the file mapped, which doubles peak memory for large generators).
    """
    try:
        with open(ck / WEIGHTS, "rb") as f:
            header, base = _header(f)
            out = {}
            for k, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                if want(k):
                    out[k] = _read_tensor(f, base, k, info)
            return out
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{ck}: cannot read {WEIGHTS} ({err}); the file is damaged") from None


def _read_tensor(f, base: int, key: str, info: dict) -> torch.Tensor:
    start, end = info["data_offsets"]
    t = torch.empty(info["shape"], dtype=_DTYPES[info["dtype"]])
    raw = t.view(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    if raw.numel() != end - start:
        raise ValueError(f"tensor {key}: {end - start} bytes for shape {info['shape']} {info['dtype']}")
    f.seek(base + start)
    if raw.numel() and f.readinto(raw.numpy()) != raw.numel():
        raise ValueError(f"tensor {key}: the file is truncated")
    return t


def update_meta(ck: Path, family_meta: dict) -> None:
    """Merge ``family_meta`` into a checkpoint's ``meta.json`` (atomically)."""
    path = Path(ck) / META
    meta = json.loads(path.read_text()) if path.is_file() else {}
    meta["family_meta"] = {**meta.get("family_meta", {}), **family_meta}
    atomic_write_text(path, json.dumps(meta, indent=2, default=float))


def save_inference_folder(out: str | Path, cfg: ExperimentConfig, weights: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write an inference folder (config, generator-side weights, metadata; no training state) atomically."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / WEIGHTS).is_file())):
        raise CheckpointError(f"--out {out}: exists and is not an empty folder or an earlier export; pick another")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_folder(out, cfg, weights, {**meta, "inference_only": True})
    return out


def load_train_state(ck: Path) -> dict:
    if not (ck / STATE).is_file():
        raise CheckpointError(
            f"{ck}: no {STATE}; this checkpoint cannot resume training (it can be used with init_from)"
        )
    return torch.load(ck / STATE, map_location="cpu", weights_only=True)
