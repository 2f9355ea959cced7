"""What the families' ``official`` modules share: settings lookup, input-channel split, key-layout helpers.

Every ``families/<name>/official.py`` has the same interface, used by :mod:`pixtrans.infer.importer`:

- ``NETS``: the official networks it reads, e.g. ``("G", "D", "E")`` for ``*_net_G.pth`` / ``_net_D`` / ``_net_E``;
- ``infer_config(nets, hints) -> dict``: the raw ``model`` / ``data`` / ``train`` sections the weights describe
  (``nets``: network -> official state dict, ``G`` always present; guesses go to ``hints.notes``);
- ``to_ours(nets, cfg) -> dict``: the official state dicts as one state dict under our keys (``G.<key>`` ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ..errors import CheckpointError

Nets = dict[str, dict[str, Tensor]]

# well-known semantic channel counts -> (label_nc, contain_dontcare, instance boundary, label set)
KNOWN_SEMANTICS = {
    36: (35, False, True, "cityscapes"),
    184: (182, True, True, "coco"),
    151: (150, True, False, "ade20k"),
}


@dataclass
class Hints:
    """What an import knows besides the weights: the user's settings (``--config`` / ``--set``, raw config
    sections), which win over the official options file (``opts``); ``file`` (the generator) for messages;
    ``notes`` collects every guess."""

    user: dict = field(default_factory=dict)
    opts: dict = field(default_factory=dict)
    file: Path = Path("net_G.pth")
    notes: list[str] = field(default_factory=list)

    def user_has(self, section: str, key: str) -> bool:
        return key in (self.user.get(section) or {})

    def get(self, section: str, key: str, *opt_keys: str, default: Any = None) -> Any:
        """``user[section][key]``, else the first non-empty official option of ``opt_keys``, else ``default``."""
        if self.user_has(section, key):
            return self.user[section][key]
        for k in opt_keys:
            if k in self.opts and self.opts[k] not in (None, ""):
                return self.opts[k]
        return default


def prefixed(nets: Nets) -> dict[str, Tensor]:
    """Networks whose official keys are ours: ``{"G": {k: v}}`` -> ``{"G.k": v}``."""
    return {f"{net}.{k}": v for net, sd in nets.items() for k, v in sd.items()}


def need(sd: dict[str, Tensor], key: str, hints: Hints, what: str) -> Tensor:
    """``sd[key]``, or a :class:`CheckpointError` saying the file is not an official ``what``."""
    if key not in sd:
        raise CheckpointError(f"{hints.file}: no '{key}' — this does not look like an official {what} state dict")
    return sd[key]


def conv_keys(sd: dict[str, Tensor], prefix: str) -> dict[int, Tensor]:
    """Top-level ``prefix<i>.weight`` 4-D tensors of a Sequential -> {i: weight}."""
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(re.escape(prefix) + r"(\d+)\.(weight|weight_orig)", k)
        if m and v.dim() == 4:
            out[int(m.group(1))] = v
    return dict(sorted(out.items()))


def block_indices(sd: dict[str, Tensor], prefix: str) -> list[int]:
    """Indices ``i`` of ``prefix<i>.conv_block.*`` (residual blocks of a Sequential)."""
    return sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.conv_block\.", k))})


def block_layout(sd: dict[str, Tensor], prefix: str, block: int) -> tuple[str, bool]:
    """(padding, dropout) of a residual block from the indices of its two convs."""
    convs = sorted(conv_keys(sd, f"{prefix}{block}.conv_block."))
    if len(convs) != 2:
        raise CheckpointError(f"residual block {prefix}{block} has {len(convs)} convolutions, expected 2")
    c1, c2 = convs
    padded = c1 == 1
    return ("reflect" if padded else "zero"), (c2 - c1) == (5 if padded else 4)


def semantic_split(sem: int, hints: Hints) -> tuple[dict, str]:
    """Split the generator's ``sem`` input channels into data settings; returns (data dict, label set name)."""
    notes = hints.notes
    label_nc = hints.get("data", "label_nc", "label_nc")
    dontcare = hints.get("data", "contain_dontcare", "contain_dontcare_label")
    no_inst = hints.get("data", "no_instance", "no_instance")
    if label_nc is None:
        if sem in KNOWN_SEMANTICS and dontcare is None and no_inst is None:
            label_nc, dc, inst, name = KNOWN_SEMANTICS[sem]
            notes.append(
                f"{sem} input channels: assumed {name} ({label_nc} classes"
                + (" + don't-care" if dc else "") + (" + instance boundary" if inst else "")
                + "); otherwise give --set data.label_nc=N (and --set data.no_instance=... / data.contain_dontcare=...)"
            )  # fmt: skip
            return {"label_nc": label_nc, "contain_dontcare": dc, "no_instance": not inst}, name
        if sem == 3 and dontcare is None and no_inst is None:
            notes.append("3 input channels: assumed an RGB image input (--set data.label_nc=N for label maps)")
            return {"label_nc": 0, "input_nc": 3}, ""
        dc = bool(dontcare)
        inst = True if no_inst is None else not no_inst
        label_nc = sem - int(dc) - int(inst)
        notes.append(
            f"{sem} input channels: assumed {label_nc} classes" + (" + don't-care" if dc else "")
            + (" + instance boundary" if inst else "")
            + " (official default); otherwise give --set data.label_nc=N --set data.no_instance=true|false"
        )  # fmt: skip
        if label_nc < 1:
            raise CheckpointError(f"{sem} input channels leave no label classes; give --set data.label_nc=N")
        return {"label_nc": label_nc, "contain_dontcare": dc, "no_instance": not inst}, ""
    label_nc = int(label_nc)
    if label_nc == 0:
        return {"label_nc": 0, "input_nc": sem}, ""
    rest = sem - label_nc
    if dontcare is None and no_inst is None:
        if rest not in (0, 1, 2):
            raise CheckpointError(
                f"the generator takes {sem} input channels, which label_nc={label_nc} cannot explain "
                "(labels [+ don't-care] [+ instance boundary]); check data.label_nc"
            )
        dc, inst = rest == 2, rest >= 1
        if rest == 1:
            notes.append(
                f"label_nc={label_nc} and {sem} channels: the extra channel taken as the instance boundary "
                "(--set data.contain_dontcare=true --set data.no_instance=true if it is don't-care)"
            )
    elif dontcare is None:
        inst = not no_inst
        dc = rest - int(inst) == 1
    else:
        dc = bool(dontcare)
        inst = (rest - int(dc)) == 1 if no_inst is None else not no_inst
    if label_nc + int(dc) + int(inst) != sem:
        raise CheckpointError(
            f"the generator takes {sem} input channels but label_nc={label_nc}, contain_dontcare={dc}, "
            f"no_instance={not inst} give {label_nc + int(dc) + int(inst)}; fix these settings"
        )
    name = next((n for c, (lnc, d, i, n) in KNOWN_SEMANTICS.items() if (lnc, d, i) == (label_nc, dc, inst)), "")
    return {"label_nc": label_nc, "contain_dontcare": dc, "no_instance": not inst}, name


_PREPROCESS = {
    "resize_and_crop": "resize_and_crop", "crop": "crop", "scale_width": "scale_width", "none": "none",
    "scale_width_and_crop": "scale_width_and_crop", "fixed": "scale_width", "scale_shortside": "resize_and_crop",
    "scale_shortside_and_crop": "resize_and_crop",
}  # fmt: skip
_LAYOUT = {"aligned": "aligned", "cityscapes": "cityscapes", "coco": "coco", "ade20k": "ade20k", "custom": "custom"}


def data_common(hints: Hints, data: dict, defaults: dict, label_set: str) -> dict:
    """Preprocessing and layout (from the official options over ``defaults``) added to the channel settings
    in ``data``."""
    opts = hints.opts
    out = dict(defaults)
    layout = _LAYOUT.get(str(opts.get("dataset_mode", "")))
    if layout:
        out["layout"] = layout
    elif label_set == "cityscapes":
        out["layout"] = "pix2pixhd"
    elif label_set in ("coco", "ade20k"):
        out["layout"] = label_set
    prep = opts.get("preprocess") or opts.get("resize_or_crop") or opts.get("preprocess_mode")
    if prep in _PREPROCESS:
        out["preprocess"] = _PREPROCESS[prep]
    for ours, theirs in (("load_size", ("load_size", "loadSize")), ("crop_size", ("crop_size", "fineSize"))):
        v = next((opts[k] for k in theirs if isinstance(opts.get(k), int)), None)
        if v:
            out[ours] = v
    for k in ("output_nc", "direction"):
        if k in opts and isinstance(opts[k], (int, str)):
            out[k] = opts[k]
    return {**out, **data}
