"""`pixtrans import`: official pix2pix / pix2pixHD / SPADE state dicts -> pixtrans checkpoints.

No official weights can be downloaded here, so each test takes one of our tiny models, renames its state dict to the
official layout (the renaming and the expected official key lists below are written from the official code:
junyanz ``UnetGenerator`` / ``ResnetGenerator`` / ``NLayerDiscriminator``, NVIDIA ``GlobalGenerator`` /
``LocalEnhancer`` / ``Encoder`` / ``MultiscaleDiscriminator``, NVlabs ``SPADEGenerator`` / ``ConvEncoder`` /
``MultiscaleDiscriminator``), strips what old files lack, saves it as ``.pth``, imports it and checks the weights
and outputs equal the original model's.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from pixtrans.checkpoints import load_checkpoint_files
from pixtrans.cli import main
from pixtrans.config import config_from_dict
from pixtrans.errors import CheckpointError, ConfigError
from pixtrans.families import build_model
from pixtrans.infer.importer import import_official, importable_families, read_options, read_weights
from pixtrans.infer.translator import load
from pixtrans.registry import family_package

NORM = ("weight", "bias", "running_mean", "running_var")


def make(raw: dict, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(config_from_dict(raw)).eval()
    with torch.no_grad():  # non-trivial norm statistics, so that importing them (or not) shows in the outputs
        for k, v in model.state_dict().items():
            if k.endswith("running_mean"):
                v.normal_(0, 0.1)
            elif k.endswith("running_var"):
                v.uniform_(0.5, 1.5)
    return model


def part(model, name: str, drop_nbt: bool = True) -> dict:
    """Network ``name``'s state dict under its own keys (as official ``net.state_dict()``), old-file style."""
    pre = name + "."
    return {
        k[len(pre) :]: v.clone()
        for k, v in model.state_dict().items()
        if k.startswith(pre) and not (drop_nbt and k.endswith("num_batches_tracked"))
    }


def assert_same_weights(ck, model) -> None:
    """Every tensor the checkpoint ``ck`` stores (D and E included, which translation does not load) equals
    ``model``'s."""
    sa, sb = load_checkpoint_files(ck)[2], model.checkpoint_state()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def label_input(model, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.data_cfg.label_nc, (1, 1, size // 8, size // 8), generator=g)
    ids = torch.nn.functional.interpolate(ids.float(), size=(size, size)).long()
    return model.prepare({"input": ids, "inst": ids * 1000})["input"]


# ---------------------------------------------------------------------------------------------- official keys
def junyanz_unet_keys(num_downs: int) -> set[str]:
    """UnetGenerator(norm batch).state_dict(): the outermost block is ``model``, each block's layers ``.model.<i>``;
    outermost [downconv, sub, relu, upconv(bias), tanh], middle [lrelu, downconv, norm, sub, relu, upconv, norm,
    (dropout)], innermost [lrelu, downconv, relu, upconv, norm]; convs before batch norm have no bias."""
    keys = {"model.model.0.weight", "model.model.3.weight", "model.model.3.bias"}
    for level in range(2, num_downs + 1):
        pre = "model.model.1.model." + "3.model." * (level - 2)
        if level < num_downs:
            keys |= {pre + "1.weight", pre + "5.weight"} | {f"{pre}{i}.{p}" for i in (2, 6) for p in NORM}
        else:
            keys |= {pre + "1.weight", pre + "3.weight"} | {f"{pre}4.{p}" for p in NORM}
    return keys


def junyanz_resnet_keys(n_blocks: int) -> set[str]:
    """ResnetGenerator(norm instance): convs with bias at 1, 4, 7, blocks 10.. (conv_block.1 / .5), transposed
    convs after the blocks and the 7x7 output conv; InstanceNorm (affine=False) has no state."""
    convs = [1, 4, 7, 10 + n_blocks, 13 + n_blocks, 17 + n_blocks]
    keys = {f"model.{i}.{p}" for i in convs for p in ("weight", "bias")}
    for b in range(10, 10 + n_blocks):
        keys |= {f"model.{b}.conv_block.{i}.{p}" for i in (1, 5) for p in ("weight", "bias")}
    return keys


def nvidia_global_keys(n_down: int, n_blocks: int, head_only: bool = False) -> list[str]:
    """GlobalGenerator (instance norm, every conv biased): [pad, conv, norm, relu], n_down x [conv, norm, relu],
    res blocks (conv_block.1 / .5), n_down x [convT, norm, relu], [pad, conv, tanh]; LocalEnhancer keeps all but
    the last three as ``model``."""
    convs = [1] + [4 + 3 * i for i in range(n_down)]
    start = 4 + 3 * n_down
    ups = [start + n_blocks + 3 * i for i in range(n_down)]
    convs += ups + ([] if head_only else [ups[-1] + 4])
    keys = [f"model.{i}.{p}" for i in convs for p in ("weight", "bias")]
    for b in range(start, start + n_blocks):
        keys += [f"model.{b}.conv_block.{i}.{p}" for i in (1, 5) for p in ("weight", "bias")]
    return keys


def nvidia_d_keys(num_D: int, n_layers: int) -> set[str]:
    """MultiscaleDiscriminator(getIntermFeat): ``scale<i>_layer<j>`` = NLayerDiscriminator ``model<j>`` groups."""
    keys = set()
    for i in range(num_D):
        for j in range(n_layers + 2):
            keys |= {f"scale{i}_layer{j}.0.weight", f"scale{i}_layer{j}.0.bias"}
    return keys


def to_nvidia_d(model, num_D: int) -> dict:
    """Our ``D.discriminator_<d>.model<j>.*`` -> official ``scale<num_D-1-d>_layer<j>.*`` (scale num_D-1 sees the
    full-resolution input in the official forward)."""
    out = {}
    for k, v in part(model, "D").items():
        d, rest = re.fullmatch(r"discriminator_(\d+)\.model(\d+\..+)", k).groups()
        j, tail = rest.split(".", 1)
        out[f"scale{num_D - 1 - int(d)}_layer{j}.{tail}"] = v
    return out


def to_nvidia_flat_d(model, num_D: int, n_layers: int) -> dict:
    """Official MultiscaleDiscriminator without getIntermFeat: ``layer<i>`` = the whole NLayerDiscriminator
    ``model`` Sequential, i.e. the groups [conv, lrelu], n_layers x [conv, norm, lrelu], [conv] concatenated."""
    starts = [0] + [2 + 3 * j for j in range(n_layers + 1)]
    out = {}
    for k, v in part(model, "D").items():
        d, j, i, tail = re.fullmatch(r"discriminator_(\d+)\.model(\d+)\.(\d+)\.(.+)", k).groups()
        out[f"layer{num_D - 1 - int(d)}.{starts[int(j)] + int(i)}.{tail}"] = v
    return out


def nvlabs_spade_g_keys(norm_batch: bool) -> set[str]:
    """SPADEGenerator (non-VAE): fc conv, SPADE ResBlks with spectral convs (conv_s without bias where fin != fout),
    SPADE norms (param_free_norm stats for sync batch, mlp_shared.0 / mlp_gamma / mlp_beta), conv_img."""
    sn = ("weight_orig", "weight_u", "weight_v")
    keys = {"fc.weight", "fc.bias", "conv_img.weight", "conv_img.bias"}
    for name, shortcut in [("head_0", 0), ("G_middle_0", 0), ("G_middle_1", 0)] + [(f"up_{i}", 1) for i in range(4)]:
        for c in ("conv_0", "conv_1"):
            keys |= {f"{name}.{c}.{p}" for p in (*sn, "bias")}
        norms = ["norm_0", "norm_1"] + (["norm_s"] if shortcut else [])
        if shortcut:
            keys |= {f"{name}.conv_s.{p}" for p in sn}
        for n in norms:
            keys |= {
                f"{name}.{n}.{m}.{p}" for m in ("mlp_shared.0", "mlp_gamma", "mlp_beta") for p in ("weight", "bias")
            }
            if norm_batch:
                keys |= {
                    f"{name}.{n}.param_free_norm.{p}" for p in ("running_mean", "running_var", "num_batches_tracked")
                }
    return keys


# ---------------------------------------------------------------------------------------------- pix2pix
P2P_UNET = {"family": "pix2pix", "data": {"label_nc": 0, "crop_size": 64}, "model": {"ngf": 8, "num_downs": 6}}
P2P_RES = {
    "family": "pix2pix",
    "data": {"label_nc": 0, "crop_size": 64},
    "model": {"netG": "resnet", "ngf": 8, "n_blocks": 2, "norm": "instance", "dropout": False},  # --no_dropout
}


def test_pix2pix_unet_with_discriminator(tmp_path):
    orig = make(P2P_UNET)
    g = part(orig, "G")
    assert set(g) == junyanz_unet_keys(6)  # our U-Net has the official layout
    torch.save(g, tmp_path / "latest_net_G.pth")
    torch.save(part(orig, "D"), tmp_path / "latest_net_D.pth")
    res = import_official("pix2pix", tmp_path / "latest_net_G.pth", tmp_path / "ck", log=lambda *_: None)
    m = res.config.model
    assert (m.netG, m.num_downs, m.ngf, m.norm, m.netD) == ("unet", 6, 8, "batch", "basic")
    assert res.config.data.input_nc == 3 and res.config.data.label_nc == 0
    assert "imported" in res.parts["D"]
    assert any("num_batches_tracked" in n for n in res.notes)
    t = load(tmp_path / "ck", device="cpu")
    assert_same_weights(res.checkpoint, orig)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(t.model.inference_module()(x), orig.inference_module()(x))
    img = t.translate(((x[0].permute(1, 2, 0) + 1) * 127.5).byte().numpy())
    assert img.size == (64, 64)
    meta = json.loads((res.checkpoint / "meta.json").read_text())
    assert meta["imported"]["files"] == {"G": "latest_net_G.pth", "D": "latest_net_D.pth"}


def test_pix2pix_resnet_old_instance_norm_file(tmp_path):
    orig = make(P2P_RES)
    g = part(orig, "G")
    assert set(g) == junyanz_resnet_keys(2)
    # PyTorch < 0.4 InstanceNorm2d kept running statistics; official files from then carry them
    for i in (2, 5, 8, 13, 16):
        g[f"model.{i}.running_mean"], g[f"model.{i}.running_var"] = torch.zeros(8), torch.ones(8)
    g["model.10.conv_block.2.running_mean"] = torch.zeros(32)
    torch.save(g, tmp_path / "200_net_G.pth")
    res = import_official("pix2pix", tmp_path / "200_net_G.pth", tmp_path / "ck", log=lambda *_: None)
    m = res.config.model
    assert (m.netG, m.n_blocks, m.norm, m.padding, m.ngf, m.dropout) == ("resnet", 2, "instance", "reflect", 8, False)
    assert "freshly initialised" in res.parts["D"]
    assert any("dropped" in n for n in res.notes)
    t = load(tmp_path / "ck", device="cpu")
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(t.model.G(x), orig.G(x))
    assert json.loads((res.checkpoint / "meta.json").read_text())["imported"]["epoch"] == "200"


def test_pix2pix_norm_none_file_without_biases(tmp_path):
    # official norm 'none': convs are built with use_bias=False except the outermost up-conv; ours keep a bias
    orig = make({**P2P_UNET, "model": {**P2P_UNET["model"], "norm": "none", "netD": "n_layers", "n_layers_D": 2}})
    g = {k: v for k, v in part(orig, "G").items() if not k.endswith(".bias") or k == "model.model.3.bias"}
    d = {k: v for k, v in part(orig, "D").items() if not k.endswith(".bias") or k in ("model.0.bias", "model.8.bias")}
    torch.save(g, tmp_path / "latest_net_G.pth")
    torch.save(d, tmp_path / "latest_net_D.pth")
    res = import_official("pix2pix", tmp_path / "latest_net_G.pth", tmp_path / "ck", log=lambda *_: None)
    assert (res.config.model.norm, res.config.model.netD, res.config.model.n_layers_D) == ("none", "n_layers", 2)
    assert any("biases set to 0" in n for n in res.notes)
    assert_same_weights(res.checkpoint, orig)  # the official init leaves biases at 0


# ---------------------------------------------------------------------------------------------- pix2pixHD
HD_GLOBAL = {
    "family": "pix2pixhd",
    "data": {"label_nc": 5, "no_instance": False, "crop_size": 64},
    "model": {"ngf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "ndf": 8, "num_D": 2},
}


@pytest.mark.parametrize("flat_d", [False, True])
def test_pix2pixhd_global_with_d_and_options_file(tmp_path, flat_d):
    orig = make(HD_GLOBAL)
    g = part(orig, "G")
    assert sorted(g) == sorted(nvidia_global_keys(2, 1))
    d = to_nvidia_flat_d(orig, 2, 3) if flat_d else to_nvidia_d(orig, 2)
    if not flat_d:
        assert set(d) == nvidia_d_keys(2, 3)
    torch.save(g, tmp_path / "latest_net_G.pth")
    torch.save(d, tmp_path / "latest_net_D.pth")
    # the options file pix2pixHD writes beside its checkpoints says how the 6 channels split
    (tmp_path / "opt.txt").write_text(
        "------------ Options -------------\nlabel_nc: 5\nno_instance: False\nngf: 8\nloadSize: 64\n"
        "fineSize: 64\nresize_or_crop: none\nnum_D: 2\n-------------- End ----------------\n"
    )
    res = import_official("pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "ck", log=lambda *_: None)
    c = res.config
    assert (c.model.netG, c.model.ngf, c.model.n_downsample_global, c.model.n_blocks_global) == ("global", 8, 2, 1)
    assert (c.model.num_D, c.model.n_layers_D, c.model.ndf) == (2, 3, 8)
    assert (c.data.label_nc, c.data.no_instance, c.data.preprocess, c.data.load_size) == (5, False, "none", 64)
    t = load(tmp_path / "ck", device="cpu")
    assert_same_weights(res.checkpoint, orig)
    x = label_input(orig)
    with torch.no_grad():
        assert torch.equal(t.model.inference_module()(x), orig.inference_module()(x))


def test_pix2pixhd_local_with_encoder(tmp_path):
    raw = {
        "family": "pix2pixhd",
        "data": {"label_nc": 4, "no_instance": False, "crop_size": 64},
        "model": {"netG": "local", "ngf": 16, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1,
                  "use_features": True, "feat_num": 3, "nef": 4, "n_downsample_E": 2, "ndf": 8, "num_D": 1},
    }  # fmt: skip
    orig = make(raw)
    g = part(orig, "G")
    local = [f"model1_1.{i}.{p}" for i in (1, 4) for p in ("weight", "bias")]
    local += [f"model1_2.0.conv_block.{i}.{p}" for i in (1, 5) for p in ("weight", "bias")]
    local += [f"model1_2.{i}.{p}" for i in (1, 5) for p in ("weight", "bias")]  # convT, then [pad, conv, tanh]
    assert sorted(g) == sorted(nvidia_global_keys(2, 1, head_only=True) + local)
    torch.save(g, tmp_path / "latest_net_G.pth")
    torch.save(part(orig, "E"), tmp_path / "latest_net_E.pth")
    torch.save(to_nvidia_d(orig, 1), tmp_path / "latest_net_D.pth")
    res = import_official(
        "pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "ck", overrides=["data.label_nc=4"], log=lambda *_: None
    )
    m = res.config.model
    assert (m.netG, m.ngf, m.n_local_enhancers, m.n_blocks_local) == ("local", 16, 1, 1)
    assert (m.use_features, m.feat_num, m.nef, m.n_downsample_E) == (True, 3, 4, 2)
    assert res.config.data.no_instance is False  # 4 classes + 3 features + 1 channel left = the boundary
    t = load(tmp_path / "ck", device="cpu")
    assert_same_weights(res.checkpoint, orig)
    x = torch.cat([label_input(orig), torch.rand(1, 3, 64, 64)], 1)
    with torch.no_grad():
        assert torch.equal(t.model.G(x), orig.G(x))


def test_pix2pixhd_settings_that_do_not_fit(tmp_path):
    orig = make(HD_GLOBAL)
    torch.save(part(orig, "G"), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="cannot explain"):
        import_official("pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "a", overrides=["data.label_nc=9"])
    with pytest.raises(CheckpointError, match="shape mismatches"):
        import_official("pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "b", overrides=["model.ngf=16"])
    # without hints: the official default (the last channel is the instance boundary), said in a note
    res = import_official("pix2pixhd", tmp_path / "latest_net_G.pth", tmp_path / "c", log=lambda *_: None)
    assert (res.config.data.label_nc, res.config.data.no_instance) == (5, False)
    assert any("official default" in n for n in res.notes)


# ---------------------------------------------------------------------------------------------- SPADE
UP5 = ["data.label_nc=5", "model.num_upsampling_layers=normal"]
SPADE = {
    "family": "spade",
    "data": {"label_nc": 5, "no_instance": True, "crop_size": 64},
    "model": {"ngf": 4, "spade_nhidden": 8, "ndf": 8, "num_D": 2, "n_layers_D": 3},
}


def test_spade_generator_and_discriminator(tmp_path):
    orig = make(SPADE)
    g = part(orig, "G", drop_nbt=False)  # SPADE (2019) files have num_batches_tracked
    assert set(g) == nvlabs_spade_g_keys(norm_batch=True)
    d = part(orig, "D")
    sn = {"weight_orig", "weight_u", "weight_v"}
    for i in range(2):  # [conv, lrelu], spectral(conv)+instance norm x (n_layers - 1), [conv]
        want = {f"discriminator_{i}.model0.0.{p}" for p in ("weight", "bias")}
        want |= {f"discriminator_{i}.model{j}.0.0.{p}" for j in (1, 2) for p in sn}
        want |= {f"discriminator_{i}.model3.0.{p}" for p in ("weight", "bias")}
        assert {k for k in d if k.startswith(f"discriminator_{i}.")} == want
    torch.save(g, tmp_path / "latest_net_G.pth")
    torch.save(d, tmp_path / "latest_net_D.pth")
    res = import_official(
        "spade",
        tmp_path / "latest_net_G.pth",
        tmp_path / "ck",
        overrides=["data.no_instance=true", "model.num_upsampling_layers=normal"],
        log=lambda *_: None,
    )
    m = res.config.model
    assert (m.ngf, m.use_vae, m.param_free_norm, m.spade_nhidden, m.spade_ks, m.spectral) == (
        4, False, "sync_batch", 8, 3, True)  # fmt: skip
    assert (m.num_D, m.n_layers_D, m.norm_D, m.spectral_D) == (2, 3, "instance", True)
    assert (res.config.data.label_nc, res.config.data.no_instance) == (5, True)
    assert m.num_upsampling_layers == "normal"
    t = load(tmp_path / "ck", device="cpu")
    assert_same_weights(res.checkpoint, orig)
    x = label_input(orig)
    with torch.no_grad():
        assert torch.equal(t.model.inference_module()(x), orig.inference_module()(x))


def test_spade_upsampling_layers_without_options_file(tmp_path, capsys):
    """'normal' and 'more' have the same weights: without opt.txt the import refuses (one line naming the --set
    that decides) instead of guessing; --set, opt.txt or, with the VAE, a known crop decide."""
    raw = {
        "family": "spade",
        "data": {"label_nc": 35, "no_instance": False, "crop_size": 64},
        "model": {"ngf": 4, "spade_nhidden": 8, "num_upsampling_layers": "more"},
    }
    orig = make(raw)
    torch.save(part(orig, "G", drop_nbt=False), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match=r"--set model.num_upsampling_layers=more \(the official Cityscapes"):
        import_official("spade", tmp_path / "latest_net_G.pth", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    args = ["import", "spade", str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "y")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_upsampling_layers cannot be told from the weights" in err[0]
    res = import_official(
        "spade", tmp_path / "latest_net_G.pth", tmp_path / "ck", overrides=["model.num_upsampling_layers=more"]
    )
    assert res.config.model.num_upsampling_layers == "more" and res.config.data.label_nc == 35
    t = load(tmp_path / "ck", device="cpu")
    x = label_input(orig)
    with torch.no_grad():
        assert torch.equal(t.model.inference_module()(x), orig.inference_module()(x))

    res = import_official(
        "spade", tmp_path / "latest_net_G.pth", tmp_path / "n", overrides=["model.num_upsampling_layers=normal"]
    )
    assert res.config.model.num_upsampling_layers == "normal"
    assert not any("num_upsampling_layers" in n for n in res.notes)
    (tmp_path / "opt.txt").write_text("num_upsampling_layers: normal\nlabel_nc: 35\n")
    res = import_official("spade", tmp_path / "latest_net_G.pth", tmp_path / "o", log=lambda *_: None)
    assert res.config.model.num_upsampling_layers == "normal"
    assert not any("num_upsampling_layers" in n for n in res.notes)


def test_spade_vae_with_encoder_infers_crop(tmp_path):
    raw = {**SPADE, "model": {**SPADE["model"], "use_vae": True, "z_dim": 16}}
    orig = make(raw)
    e = part(orig, "E")
    sn = {"weight_orig", "weight_u", "weight_v"}
    assert set(e) == {f"layer{i}.0.{p}" for i in range(1, 7) for p in sn} | {
        f"fc_{n}.{p}" for n in ("mu", "var") for p in ("weight", "bias")}  # fmt: skip
    torch.save(part(orig, "G", drop_nbt=False), tmp_path / "latest_net_G.pth")
    torch.save(e, tmp_path / "latest_net_E.pth")
    res = import_official("spade", tmp_path / "latest_net_G.pth", tmp_path / "ck", overrides=UP5, log=lambda *_: None)
    assert (res.config.model.use_vae, res.config.model.z_dim, res.config.data.crop_size) == (True, 16, 64)
    assert res.config.model.aspect_ratio == 1.0
    # with the training crop known, the size of the VAE's fc tells 'normal' (2x2 cells) from 'more' (1x1)
    crop = ["data.label_nc=5", "data.crop_size=64", "model.aspect_ratio=1"]
    again = import_official(
        "spade", tmp_path / "latest_net_G.pth", tmp_path / "c2", overrides=crop, log=lambda *_: None
    )
    assert again.config.model.num_upsampling_layers == "normal"
    assert "imported" in res.parts["E"] and "freshly" in res.parts["D"]
    t = load(tmp_path / "ck", device="cpu")
    x = label_input(orig)
    with torch.no_grad():
        assert torch.equal(
            t.model.translate({"input": x}, {"seed": 3}).image, orig.translate({"input": x}, {"seed": 3}).image
        )
        ref = torch.rand(1, 3, 64, 64) * 2 - 1
        assert torch.equal(t.model.E(ref)[0], orig.E(ref)[0])


def test_spade_old_spectral_norm_file(tmp_path):
    """PyTorch < 1.1 saved spectral norm with the normalised ``weight`` and without ``weight_v``."""
    orig = make(SPADE)
    g = part(orig, "G", drop_nbt=False)
    for k in [k for k in g if k.endswith("weight_v")]:
        base = k[: -len("_v")]
        g[base] = g[base + "_orig"] / 2
        del g[k]
    torch.save(g, tmp_path / "latest_net_G.pth")
    res = import_official("spade", tmp_path / "latest_net_G.pth", tmp_path / "ck", overrides=UP5, log=lambda *_: None)
    assert any("derived" in n for n in res.notes)
    t = load(tmp_path / "ck", device="cpu")
    assert torch.isfinite(t.model.inference_module()(label_input(orig))).all()


# ---------------------------------------------------------------------------------------------- files and CLI
class Custom:
    pass


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model.1.weight": torch.zeros(1), "extra": Custom()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="pickled Python object"):
        read_weights(tmp_path / "evil.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a weights file at all")
    with pytest.raises(CheckpointError, match="not a PyTorch weights file|cannot read"):
        read_weights(tmp_path / "junk.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_weights(tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="no such file"):
        read_weights(tmp_path / "missing.pth")


def test_wrong_family_and_existing_output(tmp_path):
    orig = make(P2P_UNET)
    torch.save(part(orig, "G"), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="SPADE"):
        import_official("spade", tmp_path / "latest_net_G.pth", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(CheckpointError, match="not empty"):
        import_official("pix2pix", tmp_path / "latest_net_G.pth", tmp_path / "full")
    with pytest.raises(ConfigError, match="unknown family"):
        import_official("cyclegan", tmp_path / "latest_net_G.pth", tmp_path / "y")
    with pytest.raises(ConfigError, match="importing is not available for 'msg_unet'"):
        import_official("msg_unet", tmp_path / "latest_net_G.pth", tmp_path / "z")
    with pytest.raises(ConfigError, match="pix2pix has no E network"):
        import_official("pix2pix", tmp_path / "latest_net_G.pth", tmp_path / "e", net_e=tmp_path / "latest_net_G.pth")


def test_importable_families_come_from_the_registry():
    assert importable_families() == ["pix2pix", "pix2pixhd", "spade"]
    for family in importable_families():
        official = family_package(family).official
        assert callable(official.infer_config) and callable(official.to_ours) and "G" in official.NETS
    assert getattr(family_package("msg_unet"), "official", None) is None


def test_read_options_official_formats(tmp_path):
    (tmp_path / "train_opt.txt").write_text(
        "----------------- Options ---------------\n"
        "               batch_size: 1                             \n"
        "                     netG: unet_256                      \t[default: resnet_9blocks]\n"
        "                  no_dropout: False\n                 lambda_L1: 100.0\n"
        "----------------- End -------------------\n"
    )
    opts = read_options(tmp_path / "train_opt.txt")
    assert opts == {"batch_size": 1, "netG": "unet_256", "no_dropout": False, "lambda_L1": 100.0}


@pytest.mark.slow
def test_cli_import_then_translate(tmp_path, capsys):
    orig = make(P2P_UNET)
    torch.save(part(orig, "G"), tmp_path / "latest_net_G.pth")
    assert main(["import", "pix2pix", str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "ck"),
                 "--netD", "none", "--set", "data.crop_size=64"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "G: imported from latest_net_G.pth" in out and "3-channel image" in out
    from PIL import Image

    Image.new("RGB", (64, 64), (20, 200, 90)).save(tmp_path / "a.png")
    assert main(["translate", str(tmp_path / "ck"), str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "a.png").size == (64, 64)
    torch.save({"x": Custom()}, tmp_path / "evil_net_G.pth")
    assert main(["import", "pix2pix", str(tmp_path / "evil_net_G.pth"), "--out", str(tmp_path / "ck2")]) == 2
    assert "pickled" in capsys.readouterr().err
