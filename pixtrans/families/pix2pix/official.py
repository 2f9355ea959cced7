"""Official junyanz/pytorch-CycleGAN-and-pix2pix weights: architecture from the key layout, keys to ours.

Our networks have the official keys (``G.<key>`` = ``netG`` key, ``D.<key>`` = ``netD`` key), with one
difference: with norm ``none`` the official convs have no bias while ours do; those start at zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ...errors import CheckpointError
from ..official_common import (
    Hints,
    Nets,
    block_indices,
    block_layout,
    conv_keys,
    data_common,
    need,
    prefixed,
    semantic_split,
)

NETS = ("G", "D")


def infer_config(nets: Nets, hints: Hints) -> dict:
    """Raw ``model`` / ``data`` / ``train`` sections of the U-Net or ResNet generator (and PatchGAN) in ``nets``."""
    G, D = nets["G"], nets.get("D")
    model: dict[str, Any] = {}
    if "model.model.0.weight" in G:
        w0 = G["model.model.0.weight"]
        ngf, in_ch = w0.shape[:2]
        out_ch = need(G, "model.model.3.weight", hints, "pix2pix U-Net").shape[1]
        depth = max(k.split(".").count("model") for k in G) - 1
        norm = "batch" if "model.model.1.model.2.weight" in G else (
            "instance" if "model.model.1.model.1.bias" in G else "none")  # fmt: skip
        dropout = not hints.opts.get("no_dropout", False)
        model.update(netG="unet", num_downs=depth, ngf=int(ngf), norm=norm, dropout=dropout)
    elif "model.1.weight" in G:
        convs = conv_keys(G, "model.")
        first, last = convs[min(convs)], convs[max(convs)]
        ngf, in_ch, out_ch = first.shape[0], first.shape[1], last.shape[0]
        blocks = block_indices(G, "model.")
        padding, dropout = block_layout(G, "model.", blocks[0]) if blocks else ("reflect", False)
        norm = "batch" if "model.2.weight" in G else ("instance" if "model.1.bias" in G else "none")
        model.update(netG="resnet", n_blocks=len(blocks), padding=padding, dropout=dropout, ngf=int(ngf), norm=norm)
    else:
        raise CheckpointError(
            f"{hints.file}: not an official pix2pix generator (expected 'model.model.0.weight' for a U-Net or "
            "'model.1.weight' for a ResNet generator)"
        )
    if norm == "none":
        hints.notes.append("norm 'none': the official convs have no bias where ours do; those biases set to 0")
    if D is not None:
        if "net.0.weight" in D:
            model.update(netD="pixel", ndf=int(D["net.0.weight"].shape[0]))
        else:
            dconv = conv_keys(D, "model.")
            if not dconv:
                raise CheckpointError(f"{hints.file}: the discriminator file has no 'model.<i>.weight' convolutions")
            n_layers = len(dconv) - 2
            model.update(ndf=int(dconv[0].shape[0]), netD="basic" if n_layers == 3 else "n_layers", n_layers_D=n_layers)
    for k in ("gan_mode", "lambda_L1", "init_type"):
        if k in hints.opts:
            model[k] = hints.opts[k]
    if model.get("gan_mode") == "wgangp":
        model.pop("gan_mode")
    label_nc = int(hints.get("data", "label_nc", default=0) or 0)
    data = {"label_nc": label_nc} if label_nc else {"label_nc": 0, "input_nc": int(in_ch)}
    if label_nc:
        data.update(semantic_split(int(in_ch), hints)[0])
    defaults = {"layout": "aligned", "output_nc": int(out_ch), "load_size": 286, "crop_size": 256}
    data = data_common(hints, data, defaults, "")
    data["output_nc"] = int(out_ch)
    return {"data": data, "model": model, "train": {}}


def to_ours(nets: Nets, cfg) -> dict[str, Tensor]:
    """``G`` / ``D`` under our keys; with norm ``none`` the conv biases the official code leaves out are zeros."""
    out = prefixed(nets)
    if cfg.model.norm == "none":
        from .family import Pix2Pix

        with torch.device("meta"):
            ref = Pix2Pix(cfg.model, cfg.data).state_dict()
        for k, v in ref.items():
            net = k.split(".", 1)[0]
            if net in nets and k.endswith(".bias") and k not in out and k[: -len("bias")] + "weight" in out:
                out[k] = torch.zeros(v.shape, dtype=v.dtype)
    return out
