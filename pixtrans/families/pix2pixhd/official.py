"""Official NVIDIA/pix2pixHD weights: architecture from the key layout, keys to ours.

``netG`` / ``netE`` keys are ours (``G.<key>`` / ``E.<key>``); the ``MultiscaleDiscriminator`` is renamed by
:func:`pix2pixhd_d_keys` and, when saved without intermediate features, regrouped.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from ...errors import CheckpointError
from ..official_common import Hints, Nets, block_indices, block_layout, conv_keys, data_common, need, semantic_split

NETS = ("G", "D", "E")


def _encoder_shape(sd: dict[str, Tensor], prefix: str = "model.") -> tuple[int, int, int, int]:
    """(width, in, out, n_down) of a pix2pixHD encoder-decoder Sequential (G1 or E)."""
    convs = conv_keys(sd, prefix)
    first, last = convs[min(convs)], convs[max(convs)]
    mids = [v for v in convs.values() if v.shape[-1] == 3]
    return int(first.shape[0]), int(first.shape[1]), int(last.shape[0]), len(mids) // 2


def infer_config(nets: Nets, hints: Hints) -> dict:
    """Raw ``model`` / ``data`` / ``train`` sections of the global / local generator, encoder and D in ``nets``."""
    G, D, E = nets["G"], nets.get("D"), nets.get("E")
    file = hints.file
    need(G, "model.1.weight", hints, "pix2pixHD generator")
    locals_ = sorted({int(m.group(1)) for k in G if (m := re.match(r"model(\d+)_1\.", k))})
    blocks = block_indices(G, "model.")
    padding = block_layout(G, "model.", blocks[0])[0] if blocks else "reflect"
    norm = "batch" if "model.2.weight" in G else "instance"
    model: dict[str, Any] = {"norm": norm, "padding": padding, "n_blocks_global": len(blocks)}
    ngf_g, in_ch = int(G["model.1.weight"].shape[0]), int(G["model.1.weight"].shape[1])
    if locals_:
        n = len(locals_)
        if locals_ != list(range(1, n + 1)):
            raise CheckpointError(f"{file}: local enhancer groups {locals_} are not numbered 1..{n}")
        mids = [v for v in conv_keys(G, "model.").values() if v.shape[-1] == 3]
        back = conv_keys(G, f"model{n}_2.")
        model.update(
            netG="local", ngf=ngf_g, n_local_enhancers=n, n_downsample_global=len(mids) // 2,
            n_blocks_local=len(block_indices(G, f"model{n}_2.")),
        )  # fmt: skip
        out_ch = int(back[max(back)].shape[0])
    else:
        _, _, out_ch, n_down = _encoder_shape(G)
        model.update(netG="global", ngf=ngf_g, n_downsample_global=n_down)
    feat = 0
    if E is not None:
        need(E, "model.1.weight", hints, "pix2pixHD encoder")
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
        model.update(_infer_d(D, hints))
    if hints.opts.get("no_lsgan"):
        model["gan_mode"] = "vanilla"
    for k in ("lambda_feat", "no_ganFeat_loss", "no_vgg_loss"):
        if k in hints.opts:
            model[k] = hints.opts[k]
    data, label_set = semantic_split(in_ch - feat, hints)
    if data.get("label_nc", 0) == 0 and E is not None:
        raise CheckpointError(f"{file}: an encoder (instance features) needs label-map input, not images")
    size = 2048 if locals_ else 1024
    defaults = {"layout": "pix2pixhd", "preprocess": "scale_width", "load_size": size, "crop_size": size}
    data = data_common(hints, data, defaults, label_set)
    data["output_nc"] = out_ch
    return {"data": data, "model": model, "train": {}}


def _infer_d(D: dict[str, Tensor], hints: Hints) -> dict:
    scales = {int(m.group(1)) for k in D if (m := re.match(r"(?:scale(\d+)_layer\d+|layer(\d+))\.", k)) and m.group(1)}
    flat = {int(m.group(1)) for k in D if (m := re.match(r"layer(\d+)\.", k))}
    num_D = len(scales or flat)
    if not num_D:
        raise CheckpointError(f"{hints.file}: the discriminator file has no 'scale<i>_layer<j>' or 'layer<i>' keys")
    if scales:
        groups = {int(m.group(1)) for k in D if (m := re.match(r"scale0_layer(\d+)\.", k))}
        n_layers, first = len(groups) - 2, D["scale0_layer0.0.weight"]
    else:
        n_layers, first = len(conv_keys(D, "layer0.")) - 2, D["layer0.0.weight"]
    return {"num_D": num_D, "n_layers_D": n_layers, "ndf": int(first.shape[0])}


def pix2pixhd_d_keys(state: dict[str, Tensor], num_D: int) -> dict[str, Tensor]:
    """Rename an official pix2pixHD ``MultiscaleDiscriminator`` state dict to our ``MultiScaleDiscriminator`` keys.

    Official ``scale{k}_layer{j}.*`` (with getIntermFeat) / ``layer{k}.*`` (without) handle the input
    downsampled ``num_D - 1 - k`` times; they become ``discriminator_{num_D-1-k}.model{j}.*`` / ``.model.*``,
    matching ``NLayerDiscriminator(variant="pix2pixhd")`` with ``features`` True / False.
    """
    out = {}
    for key, value in state.items():
        m = re.match(r"scale(\d+)_layer(\d+)\.(.+)$", key) or re.match(r"layer(\d+)\.(.+)$", key)
        if m is None:
            raise KeyError(f"{key!r} is not a pix2pixHD MultiscaleDiscriminator key")
        k = int(m.group(1))
        if not 0 <= k < num_D:
            raise KeyError(f"{key!r}: scale {k} is out of range for num_D={num_D}")
        inner = f"model{m.group(2)}.{m.group(3)}" if m.re.pattern.startswith("scale") else f"model.{m.group(2)}"
        out[f"discriminator_{num_D - 1 - k}.{inner}"] = value
    return out


def _grouped(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
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


def to_ours(nets: Nets, cfg) -> dict[str, Tensor]:
    """``G`` / ``E`` with a prefix; ``D`` renamed by :func:`pix2pixhd_d_keys` and regrouped into feature groups."""
    out = {f"{net}.{k}": v for net in ("G", "E") for k, v in nets.get(net, {}).items()}
    if "D" in nets:
        try:
            d = _grouped(pix2pixhd_d_keys(nets["D"], cfg.model.num_D), cfg.model.n_layers_D)
        except KeyError as err:
            raise CheckpointError(f"discriminator: {err.args[0]}") from None
        out.update({f"D.{k}": v for k, v in d.items()})
    return out
