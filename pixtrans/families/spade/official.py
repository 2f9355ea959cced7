"""Official NVlabs/SPADE weights: architecture from the key layout and ``opt.txt``, keys to ours.

Our keys are the official ones (``G.<key>`` = ``netG`` key, ``E.<key>`` = ``netE``, ``D.<key>`` = ``netD``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import Tensor

from ...errors import CheckpointError
from ..official_common import Hints, Nets, data_common, need, prefixed, semantic_split
from .networks import NUM_UP

NETS = ("G", "D", "E")
# official TTUR (--no_TTUR off): G and E at lr / 2, D at lr * 2 from lr 2e-4, Adam betas (0, 0.9)
TRAIN = {"lr": 1e-4, "lr_D": 4e-4, "beta1": 0.0, "beta2": 0.9}


def official_state_dict(
    netG: dict[str, Tensor], netE: dict[str, Tensor] | None = None, netD: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Official NVlabs/SPADE ``*_net_G.pth`` / ``_net_E.pth`` / ``_net_D.pth`` state dicts -> :class:`SPADE` keys.

    The layouts are the same, so this only adds the ``G.``/``E.``/``D.`` prefixes (dropping a DataParallel
    ``module.`` prefix). Old checkpoints without batch-norm ``num_batches_tracked`` get zeros for it.
    """
    out: dict[str, Tensor] = {}
    for prefix, state in (("G.", netG), ("E.", netE), ("D.", netD)):
        for k, v in (state or {}).items():
            out[prefix + k.removeprefix("module.")] = v
    for k in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(k[: -len("running_mean")] + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return out


def to_ours(nets: Nets, cfg) -> dict[str, Tensor]:
    """The official networks under our keys: the same keys with a ``G.`` / ``D.`` / ``E.`` prefix."""
    return prefixed(nets)


def _w(sd: dict[str, Tensor], prefix: str) -> Tensor | None:
    return sd.get(prefix + ".weight_orig", sd.get(prefix + ".weight"))


def _upsampling(G: dict[str, Tensor], hints: Hints) -> str:
    """``num_upsampling_layers``: 'most' shows in the keys; 'normal' and 'more' have the same weights, so the
    user's setting or the options file decide, or, with the VAE and a known training crop, the size of ``fc``.
    Anything else is an error (a wrong guess gives wrong images: the official Cityscapes default is 'more')."""
    if _w(G, "up_4.conv_0") is not None:
        return "most"
    up = hints.get("model", "num_upsampling_layers", "num_upsampling_layers")
    if up is not None:
        return str(up)
    fc, conv0 = G.get("fc.weight"), _w(G, "head_0.conv_0")
    crop, aspect = hints.get("data", "crop_size", "crop_size"), hints.get("model", "aspect_ratio", "aspect_ratio")
    if fc is not None and fc.dim() == 2 and conv0 is not None and crop is not None and aspect is not None:
        cells = int(fc.shape[0]) // int(conv0.shape[0])
        fits = [k for k in ("normal", "more") if _grid_cells(int(crop), float(aspect), NUM_UP[k]) == cells]
        if len(fits) == 1:
            return fits[0]
    raise CheckpointError(
        f"{hints.file}: num_upsampling_layers cannot be told from the weights ('normal' and 'more' have the same "
        "ones) and no opt.txt gives it; import again with --set model.num_upsampling_layers=more (the official "
        "Cityscapes default) or =normal (the official default elsewhere)"
    )


def _grid_cells(crop: int, aspect: float, n_up: int) -> int:
    sw = crop // 2**n_up
    return sw * round(sw / aspect)


def infer_config(nets: Nets, hints: Hints) -> dict:
    """Raw ``model`` / ``data`` / ``train`` sections of the generator (VAE or not), encoder and D in ``nets``."""
    G, D, E = nets["G"], nets.get("D"), nets.get("E")
    file = hints.file
    fc = need(G, "fc.weight", hints, "SPADE generator")
    conv0 = _w(G, "head_0.conv_0")
    shared = G.get("head_0.norm_0.mlp_shared.0.weight")
    if conv0 is None or shared is None:
        raise CheckpointError(f"{file}: no 'head_0' SPADE residual block; not an official SPADE generator")
    ngf = int(conv0.shape[0]) // 16
    vae = fc.dim() == 2
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
    data, label_set = semantic_split(int(shared.shape[1]), hints)
    model["num_upsampling_layers"] = _upsampling(G, hints)
    n_up = NUM_UP.get(model["num_upsampling_layers"], 5)
    aspect = hints.get("model", "aspect_ratio", "aspect_ratio")
    crop = hints.get("data", "crop_size", "crop_size")
    if vae:
        model["z_dim"] = int(fc.shape[1])
        cells = int(fc.shape[0]) // (16 * ngf)
        crop, aspect = _vae_grid(cells, n_up, crop, aspect, hints)
    if aspect is None:
        aspect = 2.0 if label_set == "cityscapes" else 1.0
    if crop is None:
        crop = 512 if label_set == "cityscapes" else 256
    model["aspect_ratio"] = float(aspect)
    if D is not None:
        model.update(_infer_d(D, hints))
    if E is not None:
        need(E, "fc_mu.weight", hints, "SPADE encoder")
        if not vae:
            raise CheckpointError(f"{file}: an encoder (latest_net_E.pth) was given but G has no VAE input")
        if not any(k.startswith("layer6.") for k in E):
            raise CheckpointError(f"{file}: the encoder has no layer6 (trained on crops < 256 px); not supported")
    elif vae:
        hints.notes.append("no latest_net_E.pth: seeded styles work, styles from a reference photo do not")
    for k in ("lambda_feat", "lambda_vgg", "lambda_kld", "no_ganFeat_loss", "no_vgg_loss"):
        if k in hints.opts:
            model[k] = hints.opts[k]
    defaults = {"layout": "custom", "preprocess": "resize_and_crop", "load_size": crop, "crop_size": crop}
    if label_set == "cityscapes":
        defaults.update(layout="pix2pixhd", preprocess="scale_width")
    data = data_common(hints, data, defaults, label_set)
    data["crop_size"] = int(crop)
    data["output_nc"] = int(need(G, "conv_img.weight", hints, "SPADE generator").shape[0])
    return {"data": data, "model": model, "train": dict(TRAIN)}


def _vae_grid(cells: int, n_up: int, crop, aspect, hints: Hints) -> tuple[int, float]:
    """Training crop and aspect ratio that make the VAE's ``fc`` produce ``cells`` = sw * sh positions."""
    if crop is not None and aspect is not None:
        return int(crop), float(aspect)
    for asp in [float(aspect)] if aspect is not None else [1.0, 2.0]:
        sw = int(crop) // 2**n_up if crop is not None else math.isqrt(round(cells * asp))
        if sw > 0 and sw * round(sw / asp) == cells:
            if crop is None:
                hints.notes.append(f"VAE start map of {cells} cells: crop {sw * 2**n_up} px, aspect ratio {asp:g}")
            return sw * 2**n_up, asp
    raise CheckpointError(
        f"the VAE generator starts from {cells} cells, which no square or 2:1 crop explains; "
        "give --set data.crop_size=W --set model.aspect_ratio=W/H"
    )


def _infer_d(D: dict[str, Tensor], hints: Hints) -> dict:
    file, norm_d = hints.file, str(hints.opts.get("norm_D", ""))
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
