"""Import official pix2pix / pix2pixHD / SPADE weights (``latest_net_G.pth``) as a pixtrans checkpoint folder.

    pixtrans import pix2pixhd checkpoints/label2city_1024p/latest_net_G.pth --out runs/label2city_1024p
    pixtrans translate runs/label2city_1024p labels/ --out out/

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only; a file that needs
arbitrary pickled objects is refused. ``latest_net_D.pth`` / ``latest_net_E.pth`` beside the generator are imported
too when present (otherwise D / E start freshly initialised and the checkpoint says so).

The architecture is read from the weights' names and shapes. What they cannot tell (how the input channels split
into labels, don't-care and instance boundary; batch vs sync-batch norm; SPADE 'normal' vs 'more' upsampling;
crop sizes) comes from, in rising priority: official defaults and well-known channel counts (36 = Cityscapes,
184 = COCO-Stuff, 151 = ADE20K), the official options file beside the weights (``opt.txt`` / ``train_opt.txt``,
read as plain text), ``--config`` (a pixtrans YAML) and ``--set key=value``. Every guess is printed.

State-dict keys of our networks match the official ones (``G.<key>`` = official ``netG`` key, likewise ``D``/``E``);
the import fills what older files lack (BatchNorm ``num_batches_tracked``), drops what they carry in excess
(pre-0.4 InstanceNorm running statistics) and regroups pix2pixHD discriminators saved without intermediate features.
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from ..config import apply_overrides, config_from_dict
from ..errors import CheckpointError, ConfigError

FAMILIES = ("pix2pix", "pix2pixhd", "spade")
OPTION_FILES = ("opt.txt", "train_opt.txt", "test_opt.txt")
_STATS = ("running_mean", "running_var", "num_batches_tracked")
# well-known semantic channel counts -> (label_nc, contain_dontcare, instance boundary, label set)
KNOWN_SEMANTICS = {
    36: (35, False, True, "cityscapes"),
    184: (182, True, True, "coco"),
    151: (150, True, False, "ade20k"),
}


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
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if m:
            raise CheckpointError(
                f"{path}: refused: the file contains a pickled Python object ({m.group(1)}), not only tensors; "
                "pixtrans never unpickles arbitrary objects. Re-save just the weights in a trusted environment: "
                "torch.save(net.state_dict(), 'net_G.pth')"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch weights file (unreadable pickle)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: cannot read it as PyTorch weights ({str(err).splitlines()[0][:200]})") from None
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


class _Hints:
    """User settings (``--config`` / ``--set``) over official options: ``get(section, key, opt_keys...)``."""

    def __init__(self, user: dict, opts: dict):
        self.user, self.opts = user, opts

    def user_has(self, section: str, key: str) -> bool:
        return key in (self.user.get(section) or {})

    def get(self, section: str, key: str, *opt_keys: str, default: Any = None) -> Any:
        if self.user_has(section, key):
            return self.user[section][key]
        for k in opt_keys:
            if k in self.opts and self.opts[k] not in (None, ""):
                return self.opts[k]
        return default


def _conv_keys(sd: dict[str, Tensor], prefix: str) -> dict[int, Tensor]:
    """Top-level ``prefix<i>.weight`` 4-D tensors of a Sequential -> {i: weight}."""
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(re.escape(prefix) + r"(\d+)\.(weight|weight_orig)", k)
        if m and v.dim() == 4:
            out[int(m.group(1))] = v
    return dict(sorted(out.items()))


def _block_indices(sd: dict[str, Tensor], prefix: str) -> list[int]:
    """Indices ``i`` of ``prefix<i>.conv_block.*`` (residual blocks of a Sequential)."""
    return sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.conv_block\.", k))})


def _block_layout(sd: dict[str, Tensor], prefix: str, block: int) -> tuple[str, bool]:
    """(padding, dropout) of a residual block from the indices of its two convs."""
    convs = sorted(_conv_keys(sd, f"{prefix}{block}.conv_block."))
    if len(convs) != 2:
        raise CheckpointError(f"residual block {prefix}{block} has {len(convs)} convolutions, expected 2")
    c1, c2 = convs
    padded = c1 == 1
    return ("reflect" if padded else "zero"), (c2 - c1) == (5 if padded else 4)


def _need(sd: dict[str, Tensor], key: str, file: Path, what: str) -> Tensor:
    if key not in sd:
        raise CheckpointError(f"{file}: no '{key}' — this does not look like an official {what} state dict")
    return sd[key]


def _semantic_split(sem: int, hints: _Hints, notes: list[str]) -> tuple[dict, str]:
    """Split the generator's ``sem`` input channels into data settings; returns (data dict, label set name)."""
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


def _data_common(hints: _Hints, data: dict, defaults: dict, label_set: str) -> dict:
    """Preprocessing and layout (from user / options / defaults) added to the channel settings in ``data``."""
    out = dict(defaults)
    layout = _LAYOUT.get(str(hints.opts.get("dataset_mode", "")))
    if layout:
        out["layout"] = layout
    elif label_set == "cityscapes":
        out["layout"] = "pix2pixhd"
    elif label_set in ("coco", "ade20k"):
        out["layout"] = label_set
    prep = hints.opts.get("preprocess") or hints.opts.get("resize_or_crop") or hints.opts.get("preprocess_mode")
    if prep in _PREPROCESS:
        out["preprocess"] = _PREPROCESS[prep]
    for ours, theirs in (("load_size", ("load_size", "loadSize")), ("crop_size", ("crop_size", "fineSize"))):
        v = next((hints.opts[k] for k in theirs if isinstance(hints.opts.get(k), int)), None)
        if v:
            out[ours] = v
    for k in ("output_nc", "direction"):
        if k in hints.opts and isinstance(hints.opts[k], (int, str)):
            out[k] = hints.opts[k]
    return {**out, **data}


# ---------------------------------------------------------------------------------------------- pix2pix
def _infer_pix2pix(G: dict, D: dict | None, E: dict | None, hints: _Hints, file: Path, notes: list[str]) -> dict:
    model: dict[str, Any] = {}
    if "model.model.0.weight" in G:
        w0 = G["model.model.0.weight"]
        ngf, in_ch = w0.shape[:2]
        out_ch = _need(G, "model.model.3.weight", file, "pix2pix U-Net").shape[1]
        depth = max(k.split(".").count("model") for k in G) - 1
        norm = "batch" if "model.model.1.model.2.weight" in G else (
            "instance" if "model.model.1.model.1.bias" in G else "none")  # fmt: skip
        dropout = not hints.opts.get("no_dropout", False)
        model.update(netG="unet", num_downs=depth, ngf=int(ngf), norm=norm, dropout=dropout)
    elif "model.1.weight" in G:
        convs = _conv_keys(G, "model.")
        first, last = convs[min(convs)], convs[max(convs)]
        ngf, in_ch, out_ch = first.shape[0], first.shape[1], last.shape[0]
        blocks = _block_indices(G, "model.")
        padding, dropout = _block_layout(G, "model.", blocks[0]) if blocks else ("reflect", False)
        norm = "batch" if "model.2.weight" in G else ("instance" if "model.1.bias" in G else "none")
        model.update(netG="resnet", n_blocks=len(blocks), padding=padding, dropout=dropout, ngf=int(ngf), norm=norm)
    else:
        raise CheckpointError(
            f"{file}: not an official pix2pix generator (expected 'model.model.0.weight' for a U-Net or "
            "'model.1.weight' for a ResNet generator)"
        )
    if D is not None:
        if "net.0.weight" in D:
            model.update(netD="pixel", ndf=int(D["net.0.weight"].shape[0]))
        else:
            dconv = _conv_keys(D, "model.")
            if not dconv:
                raise CheckpointError(f"{file}: the discriminator file has no 'model.<i>.weight' convolutions")
            n_layers = len(dconv) - 2
            model.update(ndf=int(dconv[0].shape[0]), netD="basic" if n_layers == 3 else "n_layers", n_layers_D=n_layers)
    for ours, theirs in (("gan_mode", "gan_mode"), ("lambda_L1", "lambda_L1"), ("init_type", "init_type")):
        if theirs in hints.opts:
            model[ours] = hints.opts[theirs]
    if model.get("gan_mode") == "wgangp":
        model.pop("gan_mode")
    label_nc = int(hints.get("data", "label_nc", default=0) or 0)
    data = {"label_nc": label_nc} if label_nc else {"label_nc": 0, "input_nc": int(in_ch)}
    if label_nc:
        data.update(_semantic_split(int(in_ch), hints, notes)[0])
    defaults = {"layout": "aligned", "output_nc": int(out_ch), "load_size": 286, "crop_size": 256}
    data = _data_common(hints, data, defaults, "")
    data["output_nc"] = int(out_ch)
    return {"data": data, "model": model}


# ---------------------------------------------------------------------------------------------- pix2pixHD
def _encoder_shape(sd: dict[str, Tensor], prefix: str = "model.") -> tuple[int, int, int, int]:
    """(width, in, out, n_down) of a pix2pixHD encoder-decoder Sequential (G1 or E)."""
    convs = _conv_keys(sd, prefix)
    first, last = convs[min(convs)], convs[max(convs)]
    mids = [v for i, v in convs.items() if v.shape[-1] == 3]
    return int(first.shape[0]), int(first.shape[1]), int(last.shape[0]), len(mids) // 2


def _infer_pix2pixhd(G: dict, D: dict | None, E: dict | None, hints: _Hints, file: Path, notes: list[str]) -> dict:
    _need(G, "model.1.weight", file, "pix2pixHD generator")
    locals_ = sorted({int(m.group(1)) for k in G if (m := re.match(r"model(\d+)_1\.", k))})
    blocks = _block_indices(G, "model.")
    padding = _block_layout(G, "model.", blocks[0])[0] if blocks else "reflect"
    norm = "batch" if "model.2.weight" in G else "instance"
    model: dict[str, Any] = {"norm": norm, "padding": padding, "n_blocks_global": len(blocks)}
    ngf_g, in_ch = int(G["model.1.weight"].shape[0]), int(G["model.1.weight"].shape[1])
    if locals_:
        n = len(locals_)
        if locals_ != list(range(1, n + 1)):
            raise CheckpointError(f"{file}: local enhancer groups {locals_} are not numbered 1..{n}")
        head = _conv_keys(G, "model.")
        mids = [v for v in head.values() if v.shape[-1] == 3]
        back = _conv_keys(G, f"model{n}_2.")
        model.update(
            netG="local", ngf=ngf_g, n_local_enhancers=n, n_downsample_global=len(mids) // 2,
            n_blocks_local=len(_block_indices(G, f"model{n}_2.")),
        )  # fmt: skip
        out_ch = int(back[max(back)].shape[0])
    else:
        _, _, out_ch, n_down = _encoder_shape(G)
        model.update(netG="global", ngf=ngf_g, n_downsample_global=n_down)
    feat = 0
    if E is not None:
        _need(E, "model.1.weight", file, "pix2pixHD encoder")
        nef, _, feat, n_down_e = _encoder_shape(E)
        model.update(use_features=True, feat_num=feat, nef=nef, n_downsample_E=n_down_e)
        e_norm = "batch" if "model.2.weight" in E else "instance"
        if e_norm != norm:
            raise CheckpointError(f"{file}: G uses {norm} norm but E uses {e_norm}; pixtrans needs one norm for both")
    elif hints.opts.get("instance_feat") or hints.opts.get("label_feat") or hints.get("model", "use_features"):
        raise CheckpointError(
            f"{file}: this generator was trained with instance features, but no latest_net_E.pth is beside it; "
            "put the encoder file next to it (or pass --netE FILE)"
        )
    if D is not None:
        model.update(_infer_hd_d(D, file))
    if hints.opts.get("no_lsgan"):
        model["gan_mode"] = "vanilla"
    for k in ("lambda_feat", "no_ganFeat_loss", "no_vgg_loss"):
        if k in hints.opts:
            model[k] = hints.opts[k]
    data, label_set = _semantic_split(in_ch - feat, hints, notes)
    if data.get("label_nc", 0) == 0 and E is not None:
        raise CheckpointError(f"{file}: an encoder (instance features) needs label-map input, not images")
    size = 2048 if locals_ else 1024
    defaults = {"layout": "pix2pixhd", "preprocess": "scale_width", "load_size": size, "crop_size": size}
    data = _data_common(hints, data, defaults, label_set)
    data["output_nc"] = out_ch
    return {"data": data, "model": model}


def _infer_hd_d(D: dict, file: Path) -> dict:
    scales = {int(m.group(1)) for k in D if (m := re.match(r"(?:scale(\d+)_layer\d+|layer(\d+))\.", k)) and m.group(1)}
    flat = {int(m.group(1)) for k in D if (m := re.match(r"layer(\d+)\.", k))}
    num_D = len(scales or flat)
    if not num_D:
        raise CheckpointError(f"{file}: the discriminator file has no 'scale<i>_layer<j>' or 'layer<i>' keys")
    if scales:
        groups = {int(m.group(1)) for k in D if (m := re.match(r"scale0_layer(\d+)\.", k))}
        n_layers, first = len(groups) - 2, D["scale0_layer0.0.weight"]
    else:
        n_layers, first = len(_conv_keys(D, "layer0.")) - 2, D["layer0.0.weight"]
    return {"num_D": num_D, "n_layers_D": n_layers, "ndf": int(first.shape[0])}


def _hd_d_grouped(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """``discriminator_i.model.<flat>`` -> ``discriminator_i.model<j>.<k>`` (groups: 2, 3 x n_layers, 1 modules)."""
    sizes = [2] + [3] * n_layers + [1]
    starts = [sum(sizes[:j]) for j in range(len(sizes))]
    out = {}
    for key, v in state.items():
        m = re.match(r"(discriminator_\d+)\.model\.(\d+)\.(.+)$", key)
        if m is None:
            out[key] = v
            continue
        i = int(m.group(2))
        j = max(j for j, s in enumerate(starts) if s <= i)
        out[f"{m.group(1)}.model{j}.{i - starts[j]}.{m.group(3)}"] = v
    return out


def _map_pix2pixhd(G: dict, D: dict | None, E: dict | None, num_D: int, n_layers: int) -> dict[str, dict]:
    """Official pix2pixHD networks -> our ``G`` / ``E`` (same keys) and ``D`` (renamed, regrouped)."""
    from ..layers.discriminators import pix2pixhd_d_keys

    parts = _map_prefix(G, None, E)
    if D is not None:
        try:
            parts["D"] = _hd_d_grouped(pix2pixhd_d_keys(D, num_D), n_layers)
        except KeyError as err:
            raise CheckpointError(f"discriminator: {err.args[0]}") from None
    return parts


# ---------------------------------------------------------------------------------------------- SPADE
def _w(sd: dict, prefix: str) -> Tensor | None:
    return sd.get(prefix + ".weight_orig", sd.get(prefix + ".weight"))


def _infer_spade(G: dict, D: dict | None, E: dict | None, hints: _Hints, file: Path, notes: list[str]) -> dict:
    fc = _need(G, "fc.weight", file, "SPADE generator")
    conv0 = _w(G, "head_0.conv_0")
    shared = G.get("head_0.norm_0.mlp_shared.0.weight")
    if conv0 is None or shared is None:
        raise CheckpointError(f"{file}: no 'head_0' SPADE residual block; not an official SPADE generator")
    ngf = int(conv0.shape[0]) // 16
    vae = fc.dim() == 2
    sem = int(shared.shape[1])
    model: dict[str, Any] = {
        "ngf": ngf,
        "use_vae": vae,
        "spectral": "head_0.conv_0.weight_orig" in G,
        "spade_nhidden": int(shared.shape[0]),
        "spade_ks": int(shared.shape[-1]),
    }
    norm_g = str(hints.opts.get("norm_G", ""))
    if "head_0.norm_0.param_free_norm.running_mean" in G:
        model["param_free_norm"] = "batch" if "spadebatch" in norm_g else "sync_batch"
    else:
        model["param_free_norm"] = "instance"
    if "up_4.conv_0.weight_orig" in G or "up_4.conv_0.weight" in G:
        model["num_upsampling_layers"] = "most"
    else:
        up = hints.get("model", "num_upsampling_layers", "num_upsampling_layers", default=None)
        if up is None:
            notes.append(
                "num_upsampling_layers: 'normal' and 'more' have the same weights; assumed 'normal' "
                "(--set model.num_upsampling_layers=more if it was trained with 'more')"
            )
        model["num_upsampling_layers"] = up or "normal"
    n_up = {"normal": 5, "more": 6, "most": 7}.get(model["num_upsampling_layers"], 5)
    data, label_set = _semantic_split(sem, hints, notes)
    aspect = hints.get("model", "aspect_ratio", "aspect_ratio")
    crop = hints.get("data", "crop_size", "crop_size")
    if vae:
        model["z_dim"] = int(fc.shape[1])
        cells = int(fc.shape[0]) // (16 * ngf)
        crop, aspect = _vae_grid(cells, n_up, crop, aspect, notes)
    if aspect is None:
        aspect = 2.0 if label_set == "cityscapes" else 1.0
    if crop is None:
        crop = 512 if label_set == "cityscapes" else 256
    model["aspect_ratio"] = float(aspect)
    if D is not None:
        model.update(_infer_spade_d(D, file, str(hints.opts.get("norm_D", ""))))
    if E is not None:
        _need(E, "fc_mu.weight", file, "SPADE encoder")
        if not vae:
            raise CheckpointError(f"{file}: an encoder (latest_net_E.pth) was given but G has no VAE input")
        if not any(k.startswith("layer6.") for k in E):
            raise CheckpointError(f"{file}: the encoder has no layer6 (trained on crops < 256 px); not supported")
    elif vae:
        notes.append("no latest_net_E.pth: seeded styles work, styles from a reference photo do not")
    for k in ("lambda_feat", "lambda_vgg", "lambda_kld", "no_ganFeat_loss", "no_vgg_loss"):
        if k in hints.opts:
            model[k] = hints.opts[k]
    defaults = {"layout": "custom", "preprocess": "resize_and_crop", "load_size": crop, "crop_size": crop}
    if label_set == "cityscapes":
        defaults.update(layout="pix2pixhd", preprocess="scale_width")
    data = _data_common(hints, data, defaults, label_set)
    data["crop_size"] = int(crop)
    data["output_nc"] = int(_need(G, "conv_img.weight", file, "SPADE generator").shape[0])
    return {"data": data, "model": model}


def _vae_grid(cells: int, n_up: int, crop, aspect, notes: list[str]) -> tuple[int, float]:
    """Training crop and aspect ratio that make the VAE's ``fc`` produce ``cells`` = sw * sh positions."""
    if crop is not None and aspect is not None:
        return int(crop), float(aspect)
    for asp in [float(aspect)] if aspect is not None else [1.0, 2.0]:
        sw = int(crop) // 2**n_up if crop is not None else math.isqrt(round(cells * asp))
        if sw > 0 and sw * round(sw / asp) == cells:
            if crop is None:
                notes.append(f"VAE start map of {cells} cells: crop {sw * 2**n_up} px, aspect ratio {asp:g}")
            return sw * 2**n_up, asp
    raise CheckpointError(
        f"the VAE generator starts from {cells} cells, which no square or 2:1 crop explains; "
        "give --set data.crop_size=W --set model.aspect_ratio=W/H"
    )


def _infer_spade_d(D: dict, file: Path, norm_d: str) -> dict:
    scales = {int(m.group(1)) for k in D if (m := re.match(r"discriminator_(\d+)\.", k))}
    blocks = {int(m.group(1)) for k in D if (m := re.match(r"discriminator_0\.model(\d+)\.", k))}
    if not scales or not blocks:
        raise CheckpointError(f"{file}: the discriminator file has no 'discriminator_<i>.model<n>' keys")
    first = D.get("discriminator_0.model0.0.weight")
    if first is None:
        raise CheckpointError(f"{file}: no 'discriminator_0.model0.0.weight' in the discriminator file")
    out: dict[str, Any] = {"num_D": len(scales), "n_layers_D": len(blocks) - 1, "ndf": int(first.shape[0])}
    if len(blocks) > 2:
        nested = any(k.startswith("discriminator_0.model1.0.0.") for k in D)
        out["spectral_D"] = any(k.startswith("discriminator_0.model1.0") and k.endswith("weight_orig") for k in D)
        if not nested:
            out["norm_D"] = "none"
        elif "discriminator_0.model1.0.1.weight" in D:
            out["norm_D"] = "batch" if "spectralbatch" in norm_d or norm_d == "batch" else "sync_batch"
        else:
            out["norm_D"] = "instance"
    return out


def _map_prefix(G: dict, D: dict | None, E: dict | None) -> dict[str, dict]:
    """Networks whose official keys are ours: G, D, E as given."""
    return {"G": G, **({"D": D} if D is not None else {}), **({"E": E} if E is not None else {})}


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


def _fit(part: str, src: dict[str, Tensor], own: dict[str, Tensor], file: Path, zero_bias: bool) -> list[str]:
    """Check ``src`` (official keys of network ``part``) against the model's ``own`` entries and copy it in.

    Missing ``num_batches_tracked`` become 0, surplus norm statistics (old InstanceNorm files) are dropped, and
    with ``zero_bias`` (official norm 'none' convs have no bias) missing biases become 0. Anything else that
    differs is a :class:`CheckpointError` naming the keys.
    """
    pre = part + "."
    own_part = {k[len(pre) :]: v for k, v in own.items() if k.startswith(pre)}
    notes: list[str] = []
    src = _spectral_fixups(src, own_part, part, notes)
    dropped = [k for k in src if k not in own_part and k.rsplit(".", 1)[-1] in _STATS]
    unexpected = [k for k in src if k not in own_part and k not in dropped]
    missing, filled = [], []
    for k in own_part:
        if k in src:
            continue
        if k.endswith("num_batches_tracked") or (zero_bias and k.endswith(".bias")):
            filled.append(k)
        else:
            missing.append(k)
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
    for k in filled:
        own[pre + k].zero_()
    if dropped:
        notes.append(f"{part}: dropped {len(dropped)} norm statistics the model does not use (old InstanceNorm file)")
    nbt = [k for k in filled if k.endswith("num_batches_tracked")]
    if nbt:
        notes.append(f"{part}: {len(nbt)} BatchNorm num_batches_tracked absent from the file, set to 0")
    if len(filled) > len(nbt):
        notes.append(f"{part}: {len(filled) - len(nbt)} conv biases absent (official norm 'none'), set to 0")
    return notes


# ---------------------------------------------------------------------------------------------- import
_INFER = {"pix2pix": _infer_pix2pix, "pix2pixhd": _infer_pix2pixhd, "spade": _infer_spade}


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

    if family not in FAMILIES:
        raise ConfigError(f"import: unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    g_path = Path(weights)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise CheckpointError(f"--out {out}: the folder exists and is not empty; choose a new one or pass --force")
    user = _user_settings(family, config, overrides)
    notes: list[str] = []
    G = read_weights(g_path)
    files = {"G": g_path}
    for net, arg in (("D", net_d), ("E", net_e)):
        if arg == "auto":
            found = _sibling(g_path, net)
            if found is not None and not (family == "pix2pix" and net == "E"):
                files[net] = found
        elif arg:
            files[net] = Path(arg)
    D = read_weights(files["D"]) if "D" in files else None
    E = read_weights(files["E"]) if "E" in files else None
    opts: dict = {}
    opt_path = None
    if options == "auto":
        opt_path = next((g_path.parent / n for n in OPTION_FILES if (g_path.parent / n).is_file()), None)
    elif options:
        opt_path = Path(options)
        if not opt_path.is_file():
            raise ConfigError(f"--options {opt_path}: no such file")
    if opt_path is not None:
        opts = read_options(opt_path)
        log(f"import: read official options from {opt_path}")
    hints = _Hints(user, opts)

    inferred = _INFER[family](G, D, E, hints, g_path, notes)
    train = {"lr": 1e-4, "lr_D": 4e-4, "beta1": 0.0, "beta2": 0.9} if family == "spade" else {}
    raw = {"family": family, "name": f"imported_{family}_{g_path.stem}", **inferred, "train": train}
    raw = _merge(raw, {k: v for k, v in user.items() if k != "family"})
    cfg = config_from_dict(raw, f"(import of {g_path.name})")
    try:
        model = build_model(cfg)
    except (ValueError, ConfigError) as err:
        raise CheckpointError(f"{g_path}: cannot build the model these weights describe: {err}") from None
    model.eval()
    m = cfg.model
    if family == "pix2pixhd":
        parts = _map_pix2pixhd(G, D, E, m.num_D, m.n_layers_D)
    else:
        parts = _map_prefix(G, D, E if family == "spade" else None)
    own = model.state_dict()
    zero_bias = family == "pix2pix" and m.norm == "none"
    with torch.no_grad():
        for part, sd in parts.items():
            if getattr(model, part, None) is None:
                raise CheckpointError(f"{files[part]}: the settings give this model no {part} network")
            notes += _fit(part, sd, own, files[part], zero_bias)
    model.load_state_dict(own)
    status = {p: f"imported from {files[p].name}" for p in parts}
    for p in ("D", "E"):
        if getattr(model, p, None) is not None and p not in parts:
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
    p.add_argument("family", choices=FAMILIES)
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
