"""pix2pix networks (official layout and parameter counts), shared discriminators, blocks and the family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixtrans.config import config_from_dict
from pixtrans.errors import ConfigError
from pixtrans.families import build_model, presets
from pixtrans.families.pix2pix import PRESETS, Pix2Pix, ResnetGenerator, UnetGenerator
from pixtrans.families.pix2pixhd.official import pix2pixhd_d_keys
from pixtrans.layers.blocks import SyncBatchNorm2d, conv_bias, count_params, init_weights, norm_layer
from pixtrans.layers.discriminators import (
    MultiScaleDiscriminator,
    NLayerDiscriminator,
    PixelDiscriminator,
    downsample,
)


def meta_count(make) -> int:
    with torch.device("meta"):
        return count_params(make())


# ---------------------------------------------------------------- official parameter counts and keys
def test_official_parameter_counts():
    assert meta_count(lambda: UnetGenerator(3, 3, 8, 64, "batch")) == 54_413_955  # unet_256
    assert meta_count(lambda: NLayerDiscriminator(6, 64, 3, "batch")) == 2_768_705  # basic D, 70x70
    # CycleGAN's resnet_9blocks (instance norm, biased convs)
    assert meta_count(lambda: ResnetGenerator(3, 3, 64, "instance", False, 9)) == 11_378_179


def test_unet_state_dict_layout_matches_official():
    keys = UnetGenerator(3, 3, 8, 8).state_dict()
    assert "model.model.0.weight" in keys and "model.model.0.bias" not in keys  # outermost down conv, BN -> no bias
    assert "model.model.3.bias" in keys  # outermost up conv keeps its bias
    inner = "model.model.1" + ".model.3" * 6  # the 8th level
    assert keys[f"{inner}.model.1.weight"].shape == (64, 64, 4, 4)  # innermost down conv: no norm after it
    assert f"{inner}.model.2.weight" not in keys
    assert keys[f"{inner}.model.3.weight"].shape == (64, 64, 4, 4)  # innermost up conv
    assert keys[f"{inner}.model.4.weight"].shape == (64,)  # its norm
    drops = [n for n, m in UnetGenerator(3, 3, 8, 8).named_modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(n.endswith(".model.7") for n in drops)


def test_resnet_and_d_key_layout():
    keys = ResnetGenerator(3, 3, 8, "batch", True, 2).state_dict()
    assert "model.10.conv_block.1.weight" in keys and "model.10.conv_block.6.weight" in keys  # dropout at 4
    assert "model.11.conv_block.7.running_mean" in keys
    d = NLayerDiscriminator(6, 8).state_dict()
    assert {"model.0.bias", "model.3.weight", "model.11.weight", "model.11.bias"} <= set(d)
    assert "model.2.bias" not in d  # conv before BatchNorm has no bias


# ---------------------------------------------------------------- forward shapes
def test_generator_shapes_and_range():
    x = torch.randn(2, 5, 64, 64)
    for g in (UnetGenerator(5, 3, 6, 8), ResnetGenerator(5, 3, 8, "instance", False, 2)):
        y = g(x)
        assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1.0
    with pytest.raises(ValueError, match="num_downs"):
        UnetGenerator(3, 3, 4)


def test_unet_skip_carries_activated_input():
    """Official quirk: the in-place down LeakyReLU also rewrites the skip, so negatives are scaled by 0.2."""
    g = UnetGenerator(3, 3, 5, 4).eval()
    block = g.model.model[1]
    h = -torch.ones(1, 4, 16, 16)
    out = block(h)
    assert torch.allclose(out[:, :4], torch.full_like(h, -0.2))


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zero"])
def test_resnet_padding(padding):
    g = ResnetGenerator(3, 3, 4, "batch", False, 1, padding)
    assert g(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_nlayer_features_match_plain_output():
    torch.manual_seed(0)
    d = NLayerDiscriminator(6, 8, 3, "instance").eval()
    x = torch.randn(1, 6, 64, 64)
    plain = d(x)
    assert plain.shape == (1, 1, 6, 6)  # 64 -> 32 -> 16 -> 8 -> 7 -> 6
    d.features = True
    feats = d(x)
    assert len(feats) == 5 and [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert torch.equal(feats[-1], plain)


def test_nlayer_pix2pixhd_variant_layout():
    d = NLayerDiscriminator(6, 8, 3, "instance", features=True, variant="pix2pixhd")
    keys = set(d.state_dict())
    assert {"model0.0.weight", "model1.0.bias", "model3.0.weight", "model4.0.weight"} <= keys
    feats = d(torch.randn(1, 6, 64, 64))
    assert [f.shape[-1] for f in feats] == [33, 17, 9, 10, 11]  # padding 2
    flat = NLayerDiscriminator(6, 8, 3, "instance", variant="pix2pixhd")
    assert "model.0.weight" in flat.state_dict() and flat(torch.randn(1, 6, 64, 64)).shape[-1] == 11
    with pytest.raises(ValueError, match="variant"):
        NLayerDiscriminator(6, variant="spade")


def test_pixel_discriminator():
    d = PixelDiscriminator(6, 8)
    x = torch.randn(2, 6, 16, 16)
    assert d(x).shape == (2, 1, 16, 16)
    d.features = True
    assert [f.shape[1] for f in d(x)] == [8, 16, 1]


class _Echo(nn.Module):
    def forward(self, x):
        return x


def test_multiscale_discriminator_scales():
    ms = MultiScaleDiscriminator(_Echo, 3)
    out = ms(torch.ones(1, 2, 64, 64))
    assert [o[-1].shape[-1] for o in out] == [64, 32, 16]
    # count_include_pad=False keeps a constant image constant at the borders
    assert all(torch.allclose(o[-1], torch.ones_like(o[-1])) for o in out)
    x = torch.randn(1, 2, 16, 16)
    assert torch.allclose(ms(x)[2][0], downsample(downsample(x)))


def test_multiscale_with_patchgans_and_keys():
    ms = MultiScaleDiscriminator(lambda: NLayerDiscriminator(4, 8, 2, "instance", features=True), 2)
    out = ms(torch.randn(1, 4, 64, 64))
    assert len(out) == 2 and all(len(o) == 4 for o in out)
    assert "discriminator_1.model.0.weight" in ms.state_dict()  # SPADE naming


def test_pix2pixhd_d_key_mapping_round_trip():
    ms = MultiScaleDiscriminator(lambda: NLayerDiscriminator(4, 8, 2, "instance", True, "pix2pixhd"), 3)
    ours = ms.state_dict()
    official = {}  # official names: scale k sees the input downsampled num_D - 1 - k times
    for key, v in ours.items():
        i, rest = key.removeprefix("discriminator_").split(".", 1)
        j, tail = rest.removeprefix("model").split(".", 1)
        official[f"scale{2 - int(i)}_layer{j}.{tail}"] = v
    mapped = pix2pixhd_d_keys(official, 3)
    assert mapped.keys() == ours.keys() and all(mapped[k] is ours[k] for k in ours)
    assert pix2pixhd_d_keys({"layer0.3.weight": ours["discriminator_0.model0.0.weight"]}, 2).keys() == {
        "discriminator_1.model.3.weight"
    }
    with pytest.raises(KeyError):
        pix2pixhd_d_keys({"netD.weight": torch.zeros(1)}, 3)


# ---------------------------------------------------------------- blocks
def test_norm_layer_factory():
    assert isinstance(norm_layer("batch")(4), nn.BatchNorm2d)
    inst = norm_layer("instance")(4)
    assert isinstance(inst, nn.InstanceNorm2d) and not inst.affine and not inst.track_running_stats
    assert isinstance(norm_layer("none")(4), nn.Identity)
    assert isinstance(norm_layer("sync_batch")(4), SyncBatchNorm2d)  # nn.SyncBatchNorm's math, CPU fallback
    assert norm_layer("sync_batch")(4)(torch.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)  # no process group needed
    assert [conv_bias(k) for k in ("batch", "sync_batch", "instance", "none")] == [False, False, True, True]
    with pytest.raises(ValueError, match="norm"):
        norm_layer("layer")


def test_init_weights_official_normal():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(256), nn.Linear(128, 128), nn.ConvTranspose2d(64, 32, 4))
    init_weights(net, "normal", 0.02)
    for m in (net[0], net[2], net[3]):
        assert m.weight.mean().abs() < 2e-3 and m.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert torch.all(m.bias == 0)
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=5e-3)
    assert net[1].weight.std().item() == pytest.approx(0.02, rel=0.2) and torch.all(net[1].bias == 0)
    with pytest.raises(ValueError, match="init"):
        init_weights(net, "uniformish")


def test_init_weights_reaches_spectral_norm_weights():
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(64, 64, 3))
    init_weights(conv, "normal", 0.5)
    assert conv.parametrizations.weight.original.std().item() == pytest.approx(0.5, rel=0.05)


# ---------------------------------------------------------------- the family
def _cfg(**model):
    raw = {
        "family": "pix2pix",
        "data": {"label_nc": 0, "input_nc": 3, "crop_size": 32},
        "model": {"ngf": 8, "ndf": 8, "num_downs": 5, **model},
    }
    return config_from_dict(raw)


def _pair(seed: int = 0, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    return {"input": src, "target": src.flip(1).roll(3, -1)}  # a fixed, learnable mapping


def test_presets_build_official_networks(monkeypatch):
    assert set(PRESETS) == {"unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"}
    assert set(PRESETS) <= set(presets())
    # counts only; init is slow on meta
    monkeypatch.setattr("pixtrans.families.pix2pix.family.init_weights", lambda m, *a: m)
    with torch.device("meta"):
        model = build_model(config_from_dict(PRESETS["unet_256"]))
    assert isinstance(model, Pix2Pix)
    assert count_params(model.G) == 54_413_955 and count_params(model.D) == 2_768_705
    assert model.size_multiple == 256


def test_family_losses_and_shapes():
    model = build_model(_cfg())
    assert model.size_multiple == 32 and build_model(_cfg(netG="resnet", n_blocks=1)).size_multiple == 4
    x = model.prepare(_pair())
    fakes = model.generate(x)
    assert len(fakes) == 1 and fakes[0].shape == (1, 3, 32, 32)
    g = model.g_losses(x, fakes)
    d = model.d_losses(x, fakes)
    assert set(g) == {"G_GAN", "G_L1"} and set(d) == {"D_real", "D_fake"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in [*g.values(), *d.values()])
    l1 = (fakes[0] - x["target"]).abs().mean() * 100.0
    assert g["G_L1"].item() == pytest.approx(l1.item(), rel=1e-5)
    # D terms are halved as in the official code: vanilla loss of a zero-logit D is log 2
    assert d["D_fake"].item() < 0.5 * 5  # sanity bound for a freshly initialised D
    d["D_fake"].backward()
    assert fakes[0].grad_fn is not None and all(p.grad is None for p in model.G.parameters())


def test_family_label_input_channels():
    raw = {"family": "pix2pix", "data": {"label_nc": 8, "no_instance": True}, "model": {"ngf": 8, "num_downs": 5}}
    model = build_model(config_from_dict(raw))
    assert model.G.model.model[0].in_channels == 8 and model.D.model[0].in_channels == 11
    x = model.prepare({"input": torch.randint(0, 8, (1, 1, 32, 32)), "target": torch.zeros(1, 3, 32, 32)})
    assert x["input"].shape == (1, 8, 32, 32)
    out = model.translate(x)
    assert out.image.shape == (1, 3, 32, 32) and len(out.scales) == 1


@pytest.mark.parametrize("net", [{"netD": "pixel"}, {"netD": "n_layers", "n_layers_D": 2}, {"gan_mode": "hinge"}])
def test_family_variants_run(net):
    model = build_model(_cfg(**net))
    x = model.prepare(_pair())
    fakes = model.generate(x)
    total = sum(model.g_losses(x, fakes).values()) + sum(model.d_losses(x, fakes).values())
    assert torch.isfinite(total)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="num_downs"):
        _cfg(num_downs=4)
    with pytest.raises(ConfigError, match="netG"):
        _cfg(netG="vit")


def test_inference_module_maps_input_to_image():
    model = build_model(_cfg()).eval()
    x = _pair()["input"]
    assert model.inference_module()(x).shape == (1, 3, 32, 32)


def test_a_few_steps_lower_the_l1_loss():
    torch.manual_seed(0)
    model = build_model(_cfg(dropout=False))
    x = model.prepare(_pair())
    opt_g = torch.optim.Adam(model.G.parameters(), lr=1e-2, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    l1 = []
    for _ in range(12):
        fakes = model.generate(x)
        opt_d.zero_grad()
        sum(model.d_losses(x, fakes).values()).backward()
        opt_d.step()
        model.D.requires_grad_(False)
        opt_g.zero_grad()
        g = model.g_losses(x, fakes)
        sum(g.values()).backward()
        opt_g.step()
        model.D.requires_grad_(True)
        l1.append(g["G_L1"].item())
    assert sum(l1[-3:]) < 0.85 * sum(l1[:3])


def test_one_step_on_synthetic_data(synth_root):
    from pixtrans.data.datasets import build_dataset

    cfg = config_from_dict(
        {
            "family": "pix2pix",
            "data": {"root": str(synth_root), "layout": "synth", "label_nc": 8, "load_size": 64, "crop_size": 64},
            "model": {"ngf": 8, "ndf": 8, "num_downs": 6},
        }
    )
    ds = build_dataset(cfg.data, "train", train=True)
    batch = {k: (v.unsqueeze(0) if torch.is_tensor(v) else v) for k, v in ds[0].items()}
    model = build_model(cfg)
    x = model.prepare(batch)
    assert x["input"].shape == (1, 8, 64, 64) and x["target"].shape == (1, 3, 64, 64)
    fakes = model.generate(x)
    assert torch.isfinite(sum(model.g_losses(x, fakes).values()))


def test_paper_test_protocol_uses_image_statistics_and_dropout_and_restores_state():
    eval_model = build_model(_cfg(num_downs=6))  # one decoder level with dropout
    paper = build_model(_cfg(num_downs=6, eval_mode=False))
    paper.load_state_dict(eval_model.state_dict())
    for m in (eval_model, paper):  # running statistics that differ from a single image's
        m.train()
        for _ in range(3):
            m.G(torch.randn(2, 3, 64, 64) * 3 + 1)
        m.eval()
    x = eval_model.prepare(_pair(size=64))
    before = {k: v.clone() for k, v in paper.G.state_dict().items()}
    torch.manual_seed(1)
    a = paper.translate(x).image
    torch.manual_seed(1)
    b = paper.translate(x).image
    torch.manual_seed(2)
    c = paper.translate(x).image
    assert torch.equal(a, b) and not torch.equal(a, c)  # dropout at test time
    assert not torch.allclose(a, eval_model.translate(x).image, atol=1e-3)
    # the same as the generator in train mode, with the running statistics and flags left as they were
    g = paper.G
    after = g.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not g.training and not any(m.training for m in g.modules())
    torch.manual_seed(1)
    g.train()
    ref = g(x["input"])
    assert torch.allclose(a, ref, atol=1e-6)
    # the default is eval mode: deterministic, running statistics
    eval_model.eval()
    assert torch.equal(eval_model.translate(x).image, eval_model.translate(x).image)


@pytest.mark.parametrize(
    ("name", "net", "key", "value"),
    [("unet_128", "unet", "num_downs", 7), ("unet_256", "unet", "num_downs", 8),
     ("resnet_6blocks", "resnet", "n_blocks", 6), ("resnet_9blocks", "resnet", "n_blocks", 9)],
)  # fmt: skip
def test_paper_generator_names(name, net, key, value):
    from pixtrans.config import config_from_dict
    from pixtrans.errors import ConfigError

    cfg = config_from_dict({"family": "pix2pix", "model": {"netG": name}}).model
    assert cfg.netG == net and getattr(cfg, key) == value
    assert config_from_dict({"family": "pix2pix", "model": {"netG": name, key: value}}).model.netG == net
    with pytest.raises(ConfigError, match=f"netG {name} means {key} {value}"):
        config_from_dict({"family": "pix2pix", "model": {"netG": name, key: value + 1}})
