"""Checkpoints: a folder with the typed config, safetensors weights, JSON metadata and a training-state file.

Writes are atomic: everything goes into a temporary folder that is renamed into place, then the run's ``latest``
pointer is replaced with ``os.replace``. A run killed at any moment leaves the previous checkpoint intact.

The same folder without ``train_state.pt`` and with only the generator side's weights is an *inference folder*
(:func:`save_inference_folder`, ``pixtrans export RUN --format pixtrans``); both load with ``pixtrans.load``, which
reads only the tensors it needs (:func:`read_weights`).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import warnings
import zipfile
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
    final = root / f"step_{step:07d}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _write_folder(final, cfg, weights, {**meta, "step": step}, train_state)
        atomic_write_text(run_dir / LATEST, final.name + "\n")
    except OSError as err:
        why = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
        raise CheckpointError(
            f"cannot write checkpoint {final}: {why}; the previous checkpoint is intact (free space or fix the "
            "folder, then continue with --resume)"
        ) from None
    _prune(root, keep, final)
    return final


def _prune(root: Path, keep: int, newest: Path) -> None:
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[: max(0, len(steps) - max(keep, 1))]:
        if old != newest:
            shutil.rmtree(old, ignore_errors=True)


_ORPHAN = re.compile(r"\.tmp_.*|\.old_(step_\d+)_\d+")


def clean_orphans(run_dir: str | Path) -> list[str]:
    """Remove what a killed save left in a run folder: ``checkpoints/.tmp_*`` folders, ``.old_*`` folders whose
    checkpoint is in place (one whose checkpoint is missing is moved back: it is the only copy) and ``.latest.*`` /
    ``.NAME.*`` temporary files of :func:`atomic_write_text`. Returns the names removed or restored."""
    run_dir = Path(run_dir)
    done = []
    root = run_dir / "checkpoints"
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        m = _ORPHAN.fullmatch(p.name)
        if not m or not p.is_dir():
            continue
        if m.group(1) and not (root / m.group(1)).exists():
            os.replace(p, root / m.group(1))
            done.append(f"{p.name} -> {m.group(1)}")
        else:
            shutil.rmtree(p, ignore_errors=True)
            done.append(p.name)
    for folder in (run_dir, *(c for c in root.glob("step_*") if c.is_dir())):
        for name in (LATEST, CONFIG, META):
            for tmp in folder.glob(f".{name}.*"):
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
                    done.append(str(tmp.relative_to(run_dir)))
    return done


def checkpoint_candidates(run_dir: str | Path) -> list[Path]:
    """A run's checkpoint folders, newest first: the one ``latest`` names, then every other ``step_*``."""
    run_dir = Path(run_dir)
    steps = sorted((c for c in (run_dir / "checkpoints").glob("step_*") if c.is_dir()), reverse=True)
    latest = run_dir / LATEST
    named = run_dir / "checkpoints" / latest.read_text().strip() if latest.is_file() else None
    return [named, *(c for c in steps if c != named)] if named in steps else steps


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder (follows ``latest``) or a checkpoint folder -> the checkpoint folder."""
    p = Path(path)
    if (p / WEIGHTS).is_file():
        return p
    if p.is_dir() and (p / "checkpoints").is_dir():
        candidates = checkpoint_candidates(p)
        named = (p / LATEST).read_text().strip() if (p / LATEST).is_file() else ""
        if named and named not in [c.name for c in candidates]:
            print(f"pixtrans: warning: {p}: 'latest' names {named}, which is missing", file=sys.stderr)
        for ck in candidates:
            problem = _damage(ck)
            if problem is None:
                if ck != candidates[0]:
                    print(f"pixtrans: using {ck}, the newest intact checkpoint", file=sys.stderr)
                return ck
            print(f"pixtrans: warning: {ck}: {problem}; falling back to an older checkpoint", file=sys.stderr)
        if candidates:
            raise CheckpointError(f"{p}: no intact checkpoint (every one is damaged or incomplete, see above)")
    raise CheckpointError(
        f"{p}: not a pixtrans run or checkpoint folder (expected {WEIGHTS} or a 'latest' file); "
        "for official .pth files use `pixtrans import`"
    )


def _damage(ck: Path) -> str | None:
    """What is wrong with a checkpoint folder, from its config and weights header and size (None: intact)."""
    if not (ck / WEIGHTS).is_file() or not (ck / CONFIG).is_file():
        return f"{WEIGHTS} or {CONFIG} is missing"
    try:
        with open(ck / WEIGHTS, "rb") as f:
            header, base = _header(f)
        end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        return f"{WEIGHTS} is damaged ({err})"
    if (ck / WEIGHTS).stat().st_size < base + end:
        return f"{WEIGHTS} is truncated"
    return None


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


def torch_load_safely(path: str | Path, what: str) -> object:
    """``torch.load(path, weights_only=True)`` with one-line :class:`CheckpointError` s: a file that holds pickled
    objects besides tensors (``pickle.UnpicklingError`` from the weights-only unpickler) is refused as such, one that
    is no PyTorch file at all is called that, and torch's advice to load with ``weights_only=False`` is never shown.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read it ({err.strerror})") from None
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):  # neither torch's zip format nor a pickle
        raise CheckpointError(f"{path}: cannot read it as {what}: not a PyTorch file (damaged or of another kind)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the weights-only unpickler's protocol warnings
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects besides tensors ({what} never does), which pixtrans "
            "never loads; the file may be malicious. Re-save only tensors in a trusted environment"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        why = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: cannot read it as {what} ({why}); the file is damaged") from None


def load_train_state(ck: Path) -> dict:
    """The training state of a checkpoint, read with ``weights_only=True``; a damaged file or one holding other
    pickled objects is a one-line :class:`CheckpointError` naming it."""
    path = ck / STATE
    if not path.is_file():
        raise CheckpointError(
            f"{ck}: no {STATE}; this checkpoint cannot resume training (it can be used with init_from)"
        )
    state = torch_load_safely(path, "a pixtrans training state")
    if not isinstance(state, dict) or not {"step", "optimizers", "schedulers", "rng"} <= set(state):
        raise CheckpointError(f"{path}: not a pixtrans training state (keys missing); the file is damaged")
    return state
