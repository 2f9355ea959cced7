"""Import official pix2pix / pix2pixHD / SPADE weights (``latest_net_G.pth``) as a pixtrans checkpoint folder.

    pixtrans import pix2pixhd checkpoints/label2city_1024p/latest_net_G.pth --out runs/label2city_1024p
    pixtrans translate runs/label2city_1024p labels/ --out out/

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only; a file that needs
arbitrary pickled objects is refused. ``latest_net_D.pth`` / ``latest_net_E.pth`` beside the generator are imported
too when present and the family has such a network (otherwise D / E start freshly initialised and the checkpoint
says so).

This module is family-neutral: each family's ``official`` module (see :mod:`pixtrans.families.official_common`)
reads the architecture from the weights' names and shapes and maps the keys to ours. What the weights cannot tell
(how the input channels split into labels, don't-care and instance boundary; batch vs sync-batch norm; SPADE
'normal' vs 'more' upsampling; crop sizes) comes from, in rising priority: official defaults and well-known channel
counts (36 = Cityscapes, 184 = COCO-Stuff, 151 = ADE20K), the official options file beside the weights (``opt.txt``
/ ``train_opt.txt``, read as plain text), ``--config`` (a pixtrans YAML) and ``--set key=value``. Every guess is
printed; where a guess would give wrong images (SPADE 'normal' vs 'more' without ``opt.txt``) the import refuses and
names the ``--set`` that decides.

The mapped weights must fit the model built from the inferred config exactly, with what differs between PyTorch
versions tolerated: missing BatchNorm ``num_batches_tracked`` (set to 0), pre-0.4 InstanceNorm running statistics
(dropped) and pre-1.1 spectral norm without ``weight_v`` (derived).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import yaml
from torch import Tensor

from ..checkpoints import torch_load_safely
from ..config import apply_overrides, config_from_dict
from ..errors import CheckpointError, ConfigError
from ..families.official_common import Hints
from ..registry import FAMILIES, family_package

OPTION_FILES = ("opt.txt", "train_opt.txt", "test_opt.txt")
_STATS = ("running_mean", "running_var", "num_batches_tracked")


def importable_families() -> list[str]:
    """Registered families whose package has an ``official`` module, i.e. official weights to import."""
    return [f for f in FAMILIES if getattr(family_package(f), "official", None) is not None]


def official_module(family: str) -> ModuleType:
    """The ``official`` module of ``family``; a :class:`ConfigError` when the family has none or is unknown."""
    if family not in FAMILIES:
        raise ConfigError(f"import: unknown family {family!r}; choose one of {', '.join(importable_families())}")
    official = getattr(family_package(family), "official", None)
    if official is None:
        raise ConfigError(
            f"import: importing is not available for {family!r} (it has no official weights to import); "
            f"families with official weights: {', '.join(importable_families())}"
        )
    return official


@dataclass
class ImportResult:
    """What :func:`import_official` wrote and how it decided."""

    checkpoint: Path
    config: Any
    parts: dict[str, str]  # network -> "imported from FILE" / "freshly initialised (...)"
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- reading files
def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A ``.pth`` state dict as ``{key: tensor}``, loaded with ``weights_only=True``.

    Unwraps ``{"state_dict": ...}``-style containers and a ``module.`` (DataParallel) prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    obj = torch_load_safely(path, "PyTorch weights (a state dict of tensors, e.g. torch.save(net.state_dict(), f))")
    for key in ("state_dict", "model", "netG", "generator"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict) and not isinstance(obj.get(key), Tensor):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (key -> tensor), found {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: expected a state dict of tensors; these entries are not tensors: {bad[:5]}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def read_options(path: str | Path) -> dict[str, Any]:
    """Parse an official options file (``key: value [default: ...]`` lines) into ``{key: value}``."""
    opts: dict[str, Any] = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("-") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        value = re.sub(r"\s*\[default:.*\]\s*$", "", value).strip()
        try:
            opts[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            opts[key.strip()] = value
    return opts


def _sibling(g_path: Path, net: str) -> Path | None:
    """``latest_net_G.pth`` -> ``latest_net_D.pth`` (``net`` = "D" / "E") when it exists."""
    name = g_path.name
    if "net_G" not in name:
        return None
    cand = g_path.with_name(name.replace("net_G", f"net_{net}"))
    return cand if cand.is_file() else None


# ---------------------------------------------------------------------------------------------- helpers
def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---------------------------------------------------------------------------------------------- fitting
def _spectral_fixups(src: dict[str, Tensor], own_part: dict, part: str, notes: list[str]) -> dict[str, Tensor]:
    """Files from PyTorch < 1.1 store spectral norm without ``weight_v`` but with the normalised ``weight``:
    drop that ``weight`` and derive ``v`` with one power-iteration half step (``v = normalize(W^T u)``)."""
    src = {k: v for k, v in src.items() if not (k.endswith(".weight") and k + "_orig" in src)}
    derived = 0
    for k in own_part:
        if k.endswith(".weight_v") and k not in src:
            w, u = src.get(k[:-2] + "_orig"), src.get(k[:-2] + "_u")
            if w is not None and u is not None:
                src[k] = torch.nn.functional.normalize(w.flatten(1).t().float() @ u.float(), dim=0, eps=1e-12)
                derived += 1
    if derived:
        notes.append(f"{part}: {derived} spectral-norm v vectors absent (old file), derived from weight and u")
    return src


def _fit(part: str, src: dict[str, Tensor], own: dict[str, Tensor], file: Path) -> list[str]:
    """Check ``src`` (network ``part``'s weights under our keys, without the ``part.`` prefix) against the model's
    ``own`` entries and copy it in.

    Missing ``num_batches_tracked`` become 0 and surplus norm statistics (old InstanceNorm files) are dropped.
    Anything else that differs is a :class:`CheckpointError` naming the keys.
    """
    pre = part + "."
    own_part = {k[len(pre) :]: v for k, v in own.items() if k.startswith(pre)}
    notes: list[str] = []
    src = _spectral_fixups(src, own_part, part, notes)
    dropped = [k for k in src if k not in own_part and k.rsplit(".", 1)[-1] in _STATS]
    unexpected = [k for k in src if k not in own_part and k not in dropped]
    absent = [k for k in own_part if k not in src]
    nbt = [k for k in absent if k.endswith("num_batches_tracked")]
    missing = [k for k in absent if k not in nbt]
    wrong = [f"{k}: file {tuple(src[k].shape)}, model {tuple(own_part[k].shape)}"
             for k in src if k in own_part and src[k].shape != own_part[k].shape]  # fmt: skip
    if missing or unexpected or wrong:
        lines = [f"{file}: the {part} weights do not fit the architecture read from them and the settings:"]
        if wrong:
            lines.append("  shape mismatches: " + "; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else ""))
        if missing:
            lines.append(f"  missing in the file ({len(missing)}): {missing[:5]}")
        if unexpected:
            lines.append(f"  not in the model ({len(unexpected)}): {unexpected[:5]}")
        lines.append("  check --set / --config values (e.g. data.label_nc, data.no_instance, model.* options)")
        raise CheckpointError("\n".join(lines))
    for k, v in src.items():
        if k in own_part:
            own[pre + k].copy_(v.to(own_part[k].dtype))
    for k in nbt:
        own[pre + k].zero_()
    if dropped:
        notes.append(f"{part}: dropped {len(dropped)} norm statistics the model does not use (old InstanceNorm file)")
    if nbt:
        notes.append(f"{part}: {len(nbt)} BatchNorm num_batches_tracked absent from the file, set to 0")
    return notes


# ---------------------------------------------------------------------------------------------- import
def _user_settings(family: str, config: str | Path | None, overrides: list[str] | None) -> dict:
    user: dict = {}
    if config:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"--config {path}: not valid YAML: {err}") from None
        if not isinstance(user, dict):
            raise ConfigError(f"--config {path}: the top level must be a mapping")
        if user.get("family", family) != family:
            raise ConfigError(f"--config {path}: family {user['family']!r} but importing {family!r}")
    return apply_overrides(user, overrides)


def _net_files(family: str, nets: tuple[str, ...], g_path: Path, given: dict[str, str | Path | None]) -> dict:
    """Network -> file: ``G``, and each other network of ``nets`` given explicitly or found beside ``g_path``."""
    files = {"G": g_path}
    for net, arg in given.items():
        if arg and arg != "auto" and net not in nets:
            raise ConfigError(f"--net{net} {arg}: {family} has no {net} network to import (it reads {', '.join(nets)})")
        if net not in nets or not arg:
            continue
        found = _sibling(g_path, net) if arg == "auto" else Path(arg)
        if found is not None:
            files[net] = found
    return files


def _options(g_path: Path, options: str | Path | None) -> Path | None:
    if options == "auto":
        return next((g_path.parent / n for n in OPTION_FILES if (g_path.parent / n).is_file()), None)
    if not options:
        return None
    path = Path(options)
    if not path.is_file():
        raise ConfigError(f"--options {path}: no such file")
    return path


def import_official(
    family: str,
    weights: str | Path,
    out: str | Path,
    overrides: list[str] | None = None,
    config: str | Path | None = None,
    options: str | Path | None = "auto",
    net_d: str | Path | None = "auto",
    net_e: str | Path | None = "auto",
    force: bool = False,
    log=print,
) -> ImportResult:
    """Import an official generator file (plus D / E when found) into a pixtrans checkpoint under ``out``.

    ``options``: an official options file, ``"auto"`` (``opt.txt`` / ``train_opt.txt`` beside the weights) or
    ``None``; ``net_d`` / ``net_e``: the discriminator / encoder files, ``"auto"`` (``*net_D.pth`` / ``*net_E.pth``
    beside the generator) or ``None``. ``overrides`` (``key=value``) and ``config`` (YAML) take precedence over
    everything read from the files.
    """
    from ..checkpoints import save_checkpoint
    from ..data.palettes import class_info
    from ..families import build_model

    official = official_module(family)
    g_path = Path(weights)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise CheckpointError(f"--out {out}: the folder exists and is not empty; choose a new one or pass --force")
    user = _user_settings(family, config, overrides)
    files = _net_files(family, tuple(official.NETS), g_path, {"D": net_d, "E": net_e})
    nets = {net: read_weights(path) for net, path in files.items()}
    opt_path = _options(g_path, options)
    opts: dict = {}
    if opt_path is not None:
        opts = read_options(opt_path)
        log(f"import: read official options from {opt_path}")
    hints = Hints(user=user, opts=opts, file=g_path)

    inferred = official.infer_config(nets, hints)
    raw = {"family": family, "name": f"imported_{family}_{g_path.stem}", "train": {}, **inferred}
    raw = _merge(raw, {k: v for k, v in user.items() if k != "family"})
    cfg = config_from_dict(raw, f"(import of {g_path.name})")
    try:
        model = build_model(cfg)
    except (ValueError, ConfigError) as err:
        raise CheckpointError(f"{g_path}: cannot build the model these weights describe: {err}") from None
    model.eval()
    ours = official.to_ours(nets, cfg)
    own = model.state_dict()
    notes = hints.notes
    with torch.no_grad():
        for part in files:
            if getattr(model, part, None) is None:
                raise CheckpointError(f"{files[part]}: the settings give this model no {part} network")
            pre = part + "."
            src = {k[len(pre) :]: v for k, v in ours.items() if k.startswith(pre)}
            notes += _fit(part, src, own, files[part])
    model.load_state_dict(own, strict=True)
    status = {p: f"imported from {f.name}" for p, f in files.items()}
    for p in ("D", "E"):
        if getattr(model, p, None) is not None and p not in files:
            status[p] = f"freshly initialised (no *net_{p}.pth beside the generator, and no --net{p})"

    data = cfg.data
    label_meta: dict[str, Any] = {}
    if data.label_nc > 0:
        label_set = data.layout if data.layout in ("synth", "coco", "ade20k", "cityscapes") else ""
        label_set = label_set or {35: "cityscapes", 182: "coco", 150: "ade20k"}.get(data.label_nc, "")
        info = class_info(label_set, data.label_nc)
        label_meta = {"class_names": info["names"], "palette": info["colors"]}
    epoch = g_path.name.split("_net_")[0] if "_net_" in g_path.name else ""
    meta = {
        **label_meta,
        "label_nc": data.label_nc,
        "metrics": {},
        "ema": False,
        "family_meta": model.meta(),
        "params_G": sum(p.numel() for p in model.G.parameters()),
        "imported": {
            "family": family,
            "files": {p: f.name for p, f in files.items()},
            "epoch": epoch,
            "options_file": opt_path.name if opt_path else None,
            "parts": status,
            "notes": notes,
        },
    }
    ck = save_checkpoint(out, 0, cfg, model.checkpoint_state(), meta)
    for n in notes:
        log(f"import: {n}")
    return ImportResult(checkpoint=ck, config=cfg, parts=status, notes=notes)


# ---------------------------------------------------------------------------------------------- command line
def cmd_import(a) -> None:
    opt = None if a.options == "none" else a.options
    res = import_official(
        a.family, a.file, a.out, overrides=a.set, config=a.config or None, options=opt,
        net_d=None if a.netD == "none" else a.netD, net_e=None if a.netE == "none" else a.netE, force=a.force,
    )  # fmt: skip
    cfg = res.config
    for part, what in res.parts.items():
        print(f"{part}: {what}")
    d = cfg.data
    if d.label_nc:
        inp = f"{d.label_nc} classes" + (" + don't-care" if d.contain_dontcare else "")
        inp += "" if d.no_instance else " + instance boundary"
    else:
        inp = f"{d.input_nc}-channel image"
    print(f"model: {cfg.family} ({inp} -> {d.output_nc} channels); settings in {res.checkpoint / 'config.yaml'}")
    print(f"checkpoint: {res.checkpoint}  (use with: pixtrans translate {a.out} INPUTS --out DIR)")


def add_commands(sub) -> None:
    """Register ``pixtrans import``."""
    p = sub.add_parser("import", help="import official pix2pix / pix2pixHD / SPADE weights as a pixtrans checkpoint")
    names = importable_families()  # checked by import_official, which also explains a family without official weights
    p.add_argument("family", metavar="{" + ",".join(names) + "}", help="model family of the official weights")
    p.add_argument("file", help="the official generator weights, e.g. checkpoints/NAME/latest_net_G.pth")
    p.add_argument("--out", required=True, help="checkpoint (run) folder to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting the weights cannot tell, e.g. data.label_nc=35 (repeatable)")  # fmt: skip
    p.add_argument("--config", default="", help="a pixtrans YAML whose data/model settings apply")
    p.add_argument("--options", default="auto", help="official options file (default: opt.txt beside FILE; 'none')")
    p.add_argument("--netD", default="auto", help="discriminator weights (default: *net_D.pth beside FILE; 'none')")
    p.add_argument("--netE", default="auto", help="encoder weights (default: *net_E.pth beside FILE; 'none')")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder")
    p.set_defaults(fn=cmd_import)
