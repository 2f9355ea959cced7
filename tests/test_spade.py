"""SPADE family: layers, official structure (parameter counts, state-dict keys, spectral norm), losses, styles."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from pixtrans.config import TrainConfig, config_from_dict, load_config
from pixtrans.errors import ConfigError
from pixtrans.families import build_model, presets
from pixtrans.families.spade import (
    PRESETS,
    ConvEncoder,
    SPADEGenerator,
    SPADENLayerDiscriminator,
    official_state_dict,
)
from pixtrans.layers.spade import SPADE, SPADEResnetBlock, SyncBatchNorm2d

ROOT = Path(__file__).resolve().parents[1]
TINY = {"ngf": 8, "ndf": 8, "z_dim": 16, "spade_nhidden": 16, "no_vgg_loss": True}


def _model(vae=False, size=64, **model):
    data = {"label_nc": 8, "no_instance": False, "crop_size": size}
    cfg = config_from_dict({"family": "spade", "data": data, "model": {**TINY, "use_vae": vae, **model}})
    torch.manual_seed(0)
    return build_model(cfg), cfg


def _batch(b=2, size=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "input": torch.randint(0, 8, (b, 1, size, size), generator=g),
        "inst": torch.randint(0, 3, (b, 1, size, size), generator=g),
        "target": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
    }


def _has_sn(m: nn.Module) -> bool:
    return hasattr(m, "weight_orig") and hasattr(m, "weight_u") and hasattr(m, "weight_v")


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------ official structure
def test_generator_parameter_counts_match_official():
    # Official SPADEGenerator, 36 semantic channels (Cityscapes: 35 labels + instance edges), ngf 64, 'normal'.
    # Without the VAE the count does not depend on the crop. With the VAE (z_dim 256) the fc Linear depends on
    # sw*sh: the official 126,400,707 is at the Cityscapes setting crop_size 512, aspect_ratio 2 (sw=16, sh=8).
    # Spectral norm renames weights but adds no parameters (u, v are buffers), so the big ones are counted
    # without it (building its power-iteration vectors on the meta device is slow); a small G checks that claim.
    sn = {"spectral": False}
    with torch.device("meta"):
        assert _count(SPADEGenerator(36, 64, **sn)) == 93_048_003
        vae = SPADEGenerator(36, 64, z_dim=256, use_vae=True, crop_size=512, aspect_ratio=2.0, **sn)
        assert _count(vae) == 126_400_707
        g = SPADEGenerator(36, 64, num_upsampling_layers="most", **sn)
    assert hasattr(g, "up_4") and g.conv_img.in_channels == 32 and g.size_multiple == 128
    assert _count(SPADEGenerator(5, 8, spade_nhidden=8)) == _count(SPADEGenerator(5, 8, spade_nhidden=8, **sn))


def test_presets_semantic_channels_and_vae():
    assert {"spade_cityscapes", "spade_cityscapes_vae", "spade_coco", "spade_ade20k"} <= set(presets())
    want = {
        "spade_cityscapes": (36, False),
        "spade_cityscapes_vae": (36, True),
        "spade_coco": (184, False),
        "spade_ade20k": (151, False),
    }
    for name, (nc, vae) in want.items():
        cfg = config_from_dict(PRESETS[name])
        assert cfg.data.semantic_nc == nc and cfg.model.use_vae is vae, name
    raw = {**PRESETS["spade_cityscapes_vae"]}
    raw["model"] = {**raw["model"], "spectral": False, "spectral_D": False}  # fast on meta; same counts
    with torch.device("meta"):
        m = build_model(config_from_dict(raw))
    assert _count(m.G) == 126_400_707 and (m.G.sh, m.G.sw) == (8, 16)


def test_state_dict_keys_follow_official_layout():
    m, _ = _model(vae=True)
    keys = set(m.state_dict())
    for k in [
        "G.fc.weight",
        "G.head_0.conv_0.weight_orig",
        "G.head_0.conv_0.weight_u",
        "G.head_0.conv_0.weight_v",
        "G.head_0.norm_0.mlp_shared.0.weight",
        "G.head_0.norm_0.mlp_gamma.bias",
        "G.head_0.norm_1.mlp_beta.weight",
        "G.up_0.conv_s.weight_orig",
        "G.up_0.norm_s.param_free_norm.running_mean",
        "G.conv_img.weight",
        "D.discriminator_0.model0.0.weight",
        "D.discriminator_0.model1.0.0.weight_orig",
        "D.discriminator_1.model3.0.0.weight_v",
        "D.discriminator_1.model4.0.bias",
        "E.layer1.0.weight_orig",
        "E.layer6.0.weight_u",
        "E.fc_mu.weight",
        "E.fc_var.bias",
    ]:
        assert k in keys, k
    # no learned shortcut where channels stay; convs followed by a norm carry no bias (as official)
    assert not any(k.startswith(("G.head_0.conv_s", "G.G_middle_0.norm_s")) for k in keys)
    assert "G.up_0.conv_s.bias" not in keys and "E.layer1.0.bias" not in keys
    assert "D.discriminator_0.model1.0.0.bias" not in keys


def test_official_state_dicts_load_by_prefix():
    src, _ = _model(vae=True, param_free_norm="sync_batch")
    with torch.no_grad():
        for t in [*src.parameters(), *src.buffers()]:
            t.copy_(torch.rand_like(t.float()).to(t.dtype) * 3)  # differs from a fresh model's init
    state = src.state_dict()
    net = {n: {k[2:]: v for k, v in state.items() if k.startswith(n + ".")} for n in "GED"}
    net["G"] = {"module." + k: v for k, v in net["G"].items() if not k.endswith("num_batches_tracked")}  # old style
    dst, _ = _model(vae=True, param_free_norm="sync_batch")
    dst.load_state_dict(official_state_dict(net["G"], net["E"], net["D"]), strict=True)
    for k, v in dst.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, state[k]), k


def test_spectral_norm_where_official_has_it():
    m, _ = _model(vae=True)
    for name in ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"):
        blk = getattr(m.G, name)
        assert _has_sn(blk.conv_0) and _has_sn(blk.conv_1), name
        if blk.learned_shortcut:
            assert _has_sn(blk.conv_s), name
        for norm in (blk.norm_0, blk.norm_1):  # SPADE's own convs: plain
            assert not any(_has_sn(c) for c in norm.modules() if isinstance(c, nn.Conv2d))
    assert not _has_sn(m.G.fc) and not _has_sn(m.G.conv_img)
    for i in range(2):
        d = getattr(m.D, f"discriminator_{i}")
        assert not _has_sn(d.model0[0]) and not _has_sn(d.model4[0])  # first and last conv: plain
        for j in (1, 2, 3):
            conv, norm = d.get_submodule(f"model{j}.0")
            assert _has_sn(conv) and isinstance(norm, nn.InstanceNorm2d)
    for j in range(1, 7):
        assert _has_sn(getattr(m.E, f"layer{j}")[0])
    assert not _has_sn(m.E.fc_mu)
    # the switch turns it off
    m2, _ = _model(spectral=False, spectral_D=False)
    assert not any(_has_sn(c) for c in m2.modules())


def test_discriminator_strides_and_features():
    d = SPADENLayerDiscriminator(12, ndf=8, n_layers=4)
    feats = d(torch.randn(2, 12, 64, 64))
    assert len(feats) == 5
    # strides 2, 2, 2, 1 then the stride-1 output conv (4x4 kernels, padding 2)
    assert [f.shape[-1] for f in feats] == [33, 17, 9, 10, 11]
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert SPADENLayerDiscriminator(3, ndf=256, n_layers=4).model3[0][0].out_channels == 512  # capped at 512


# ------------------------------------------------------------------------------------------ layers
@pytest.mark.parametrize("kind", ["instance", "batch", "sync_batch"])
def test_spade_output_depends_on_segmap_only_through_gamma_beta(kind):
    torch.manual_seed(0)
    layer = SPADE(6, 4, kind, nhidden=8)
    x = torch.randn(2, 6, 8, 8)
    seg_a = torch.zeros(2, 4, 16, 16)
    seg_a[:, 0] = 1
    seg_b = seg_a.clone()
    seg_b[:, :, :8] = 0
    seg_b[:, 2, :8] = 1  # the top half is another class
    out_a, out_b = layer(x, seg_a), layer(x, seg_b)
    assert out_a.shape == x.shape
    assert not torch.allclose(out_a, out_b)
    torch.testing.assert_close(layer(x, seg_a), out_a)
    # with gamma = beta = 0 the layer is the bare parameter-free norm
    for conv in (layer.mlp_gamma, layer.mlp_beta):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    torch.testing.assert_close(layer(x, seg_a), layer.param_free_norm(x))
    assert not any(p.requires_grad for p in layer.param_free_norm.parameters())


def test_sync_batch_norm_falls_back_on_cpu_with_batchnorm_keys():
    sbn, bn = SyncBatchNorm2d(4, affine=False), nn.BatchNorm2d(4, affine=False)
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(sbn(x), bn(x))
    assert sbn.state_dict().keys() == bn.state_dict().keys()
    with pytest.raises(ValueError, match="4-D"):
        sbn(torch.randn(3, 4))


def test_resblock_shortcut_and_leaky_relu():
    blk = SPADEResnetBlock(8, 4, 3, param_free="instance", nhidden=8)
    assert blk.learned_shortcut and blk.conv_0.out_channels == 4 and blk.conv_s.kernel_size == (1, 1)
    same = SPADEResnetBlock(8, 8, 3, param_free="instance", nhidden=8)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    seg = torch.rand(1, 3, 8, 8)
    x = torch.randn(1, 8, 8, 8)
    assert blk(x, seg).shape == (1, 4, 8, 8)
    # identity shortcut: zeroing the residual branch's last conv gives back the input
    plain = SPADEResnetBlock(8, 8, 3, spectral=False, param_free="instance", nhidden=8)
    nn.init.zeros_(plain.conv_1.weight)
    nn.init.zeros_(plain.conv_1.bias)
    torch.testing.assert_close(plain(x, seg), x)


def test_encoder_any_photo_size():
    e = ConvEncoder(ngf=4, z_dim=8)
    mu, logvar = e(torch.rand(2, 3, 40, 72) * 2 - 1)
    assert mu.shape == logvar.shape == (2, 8)


# ------------------------------------------------------------------------------------------ generator sizes
def test_generator_any_size_and_clear_error():
    g = SPADEGenerator(5, 4, num_upsampling_layers="normal", param_free="instance", spade_nhidden=8).eval()
    with torch.no_grad():
        assert g(torch.rand(1, 5, 64, 96)).shape == (1, 3, 64, 96)
        with pytest.raises(ValueError, match="multiples of 32"):
            g(torch.rand(1, 5, 64, 80))
    more = SPADEGenerator(5, 4, num_upsampling_layers="more", param_free="instance", spade_nhidden=8).eval()
    assert more.size_multiple == 64
    with torch.no_grad():
        assert more(torch.rand(1, 5, 128, 64)).shape == (1, 3, 128, 64)


def test_vae_generator_other_sizes_resize_the_start_map():
    g = SPADEGenerator(
        5, 4, z_dim=8, use_vae=True, crop_size=64, aspect_ratio=2.0, param_free="instance", spade_nhidden=8
    ).eval()
    assert (g.sw, g.sh) == (2, 1)
    z = torch.randn(1, 8)
    with torch.no_grad():
        assert g(torch.rand(1, 5, 32, 64), z).shape == (1, 3, 32, 64)  # the training size
        assert g(torch.rand(1, 5, 96, 64), z).shape == (1, 3, 96, 64)  # another size
        assert g(torch.rand(2, 5, 32, 64), z).shape == (2, 3, 32, 64)  # one z for a batch


# ------------------------------------------------------------------------------------------ losses
class _StubD(nn.Module):
    """Per-scale [feature, prediction]: the prediction of each item is the mean of its image channels."""

    def forward(self, inp):
        img = inp[:, -3:]
        pred = img.mean((1, 2, 3), keepdim=True)
        return [[img * 2.0, pred], [img[..., ::2, ::2], pred]]


def test_hinge_and_feature_matching_values_on_known_inputs():
    m, _ = _model()
    m.D = _StubD()
    x = m.prepare(_batch(b=2))
    x["target"] = torch.full_like(x["target"], -0.25)
    fake = torch.full_like(x["target"], 0.5)
    d = m.d_losses(x, [fake])
    assert set(d) == {"D_real", "D_fake"}
    torch.testing.assert_close(d["D_fake"], torch.tensor(1.5))  # mean(max(0, 1 + 0.5))
    torch.testing.assert_close(d["D_real"], torch.tensor(1.25))  # mean(max(0, 1 - (-0.25)))
    g = m.g_losses(x, [fake])
    # no VGG (no_vgg_loss) and so the reconstruction term, no KLD (no VAE)
    assert set(g) == {"G_GAN", "G_GAN_Feat", "G_L1", "G_SSIM"}
    torch.testing.assert_close(g["G_L1"], torch.tensor(10.0 * 0.75))  # default lambda_L1 10 x |0.5 - (-0.25)|
    torch.testing.assert_close(g["G_GAN"], torch.tensor(-0.5))
    # SPADE weighting: lambda_feat / num_D * sum over scales of L1 of the non-final features
    # scale 0: |2*0.5 - 2*(-0.25)| = 1.5; scale 1: 0.75 -> 10 / 2 * (1.5 + 0.75)
    torch.testing.assert_close(g["G_GAN_Feat"], torch.tensor(11.25))
    m2, _ = _model(no_ganFeat_loss=True, lambda_feat=3.0, lambda_L1=0, lambda_ssim=0)
    m2.D = _StubD()
    assert set(m2.g_losses(x, [fake])) == {"G_GAN"}


class _StubE(nn.Module):
    def forward(self, img):
        b = img.shape[0]
        return torch.ones(b, 16), torch.zeros(b, 16)  # KL per item = 0.5 * sum(mu^2) = 8


def test_kld_weighted_value_on_known_inputs():
    m, cfg = _model(vae=True, lambda_kld=0.05)
    m.E = _StubE()
    x = m.prepare(_batch(b=2))
    fakes = m.generate(x)
    torch.testing.assert_close(x["mu"], torch.ones(2, 16))
    losses = m.g_losses(x, fakes)
    assert set(losses) == {"G_GAN", "G_GAN_Feat", "G_L1", "G_SSIM", "KLD"}
    torch.testing.assert_close(losses["KLD"], torch.tensor(0.05 * 16.0))


def test_train_step_backward_and_losses_finite():
    for vae in (False, True):
        m, _ = _model(vae=vae, param_free_norm="sync_batch")
        x = m.prepare(_batch(b=2))
        assert x["input"].shape[1] == 9  # 8 classes + instance boundary
        fakes = m.generate(x)
        assert fakes[-1].shape == (2, 3, 64, 64) and fakes[-1].abs().max() <= 1
        lg = m.g_losses(x, fakes)
        sum(lg.values()).backward()
        assert m.G.fc.weight.grad is not None and (not vae or m.E.fc_mu.weight.grad is not None)
        ld = m.d_losses(x, [f.detach() for f in fakes])
        sum(ld.values()).backward()
        assert all(torch.isfinite(v) for v in {**lg, **ld}.values())


def test_optim_groups_ttur():
    m, _ = _model(vae=True)
    g = m.optim_groups(TrainConfig(lr=2e-4, beta1=0.0, beta2=0.9))  # official: lr_G = lr/2, lr_D = 2 lr
    assert g["G"].lr == pytest.approx(1e-4) and g["D"].lr == pytest.approx(4e-4) and g["G"].betas == (0.0, 0.9)
    n_e = len(list(m.E.parameters()))
    assert len(g["G"].params) == len(list(m.G.parameters())) + n_e and len(g["D"].params) == len(list(m.D.parameters()))
    g = m.optim_groups(TrainConfig(lr=1e-4, lr_D=4e-4))  # explicit rates are used as given
    assert (g["G"].lr, g["D"].lr) == (1e-4, 4e-4)
    m2, _ = _model(ttur=False)
    g = m2.optim_groups(TrainConfig(lr=2e-4))
    assert (g["G"].lr, g["D"].lr) == (2e-4, 2e-4)


def test_dontcare_and_instance_channels():
    cfg = config_from_dict(
        {
            "family": "spade",
            "data": {"label_nc": 4, "contain_dontcare": True, "no_instance": False, "crop_size": 32},
            "model": TINY,
        }
    )
    m = build_model(cfg)
    assert m.in_channels == 6 and m.G.fc.in_channels == 6
    lab = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    lab[..., :8] = 255
    lab[..., 8:16] = 3
    x = m.prepare({"input": lab, "inst": torch.zeros_like(lab)})
    assert x["input"][0, 4, 0, 0] == 1 and x["input"][0, 3, 0, 10] == 1  # dontcare channel, class 3
    assert x["input"][0, 5].sum() == 0  # one instance: no boundary
    assert m.D.discriminator_0.model0[0].in_channels == 6 + 3


# ------------------------------------------------------------------------------------------ styles
def test_vae_styles_seeds_and_reference(tmp_path):
    m, _ = _model(vae=True)
    m.eval()
    x = m.prepare(_batch(b=1))
    a, a2, b = m.translate(x, {"seed": 3}), m.translate(x, {"seed": 3}), m.translate(x, {"seed": 4})
    assert a.style == {"seed": 3} and a.image.shape == (1, 3, 64, 64)
    assert torch.equal(a.image, a2.image)
    assert (a.image - b.image).abs().max() > 1e-6
    r = m.translate(x)  # a random seed is drawn and recorded; it reproduces the image
    assert isinstance(r.style["seed"], int)
    assert torch.equal(m.translate(x, {"seed": r.style["seed"]}).image, r.image)
    # a reference photo: z = mu of its code; deterministic, differs from seeded outputs and between photos
    photo = torch.rand(1, 3, 64, 64) * 2 - 1
    ref = m.translate(x, {"reference": photo, "reference_name": "p.png"})
    assert ref.style == {"reference": "p.png"}
    assert torch.equal(m.translate(x, {"reference": photo}).image, ref.image)
    assert (ref.image - a.image).abs().max() > 1e-6
    other = m.translate(x, {"reference": -photo})
    assert (other.image - ref.image).abs().max() > 1e-6
    assert other.style["reference"].startswith("sha1:")
    # a file path works too and is recorded by name
    p = tmp_path / "ref.png"
    Image.fromarray(((photo[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()).save(p)
    assert m.translate(x, {"reference": str(p)}).style == {"reference": "ref.png"}
    with pytest.raises(ConfigError, match="seed"):
        m.translate(x, {"seed": "abc"})
    with pytest.raises(ConfigError, match="unknown"):
        m.translate(x, {"colour": 1})


def test_no_vae_translate_is_deterministic_and_refuses_a_reference():
    m, _ = _model()
    m.eval()
    x = m.prepare(_batch(b=1))
    a = m.translate(x)
    assert a.style == {} and torch.equal(a.image, m.translate(x, {"seed": 5}).image)
    with pytest.raises(ConfigError, match="use_vae"):
        m.translate(x, {"reference": torch.zeros(1, 3, 64, 64)})


def test_inference_module_folds_spectral_norm_and_matches_eval():
    for vae in (False, True):
        m, _ = _model(vae=vae, param_free_norm="batch")
        x = m.prepare(_batch(b=2))
        m.generate(x)  # a training pass moves BN stats and the spectral-norm vectors away from their init
        m.eval()
        inp = x["input"]
        exp = m.inference_module()
        assert not any(_has_sn(c) for c in exp.modules())
        with torch.no_grad():
            o1, o2 = exp(inp), exp(inp)
            ref = m.G(inp, torch.zeros(2, 16) if vae else None)  # VAE export: z = 0
        assert o1.shape == (2, 3, 64, 64) and torch.equal(o1, o2)
        torch.testing.assert_close(o1, ref, rtol=1e-5, atol=1e-5)
        assert _has_sn(m.G.head_0.conv_0)  # the model itself keeps its spectral norm


# ------------------------------------------------------------------------------------------ configs
def test_configs_load_with_overrides():
    for name in ("spade_synth", "spade_synth_vae", "spade_cityscapes", "spade_coco", "spade_ade20k"):
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", ["data.root=/tmp/x", "train.steps=3", "model.ngf=16"])
        assert cfg.family == "spade" and cfg.model.ngf == 16 and cfg.train.steps == 3
        assert cfg.model.gan_mode == "hinge" and (cfg.train.lr, cfg.train.lr_D) == (1e-4, 4e-4)
        assert (cfg.train.beta1, cfg.train.beta2) == (0.0, 0.9)
    assert load_config(ROOT / "configs" / "spade_synth.yaml").model.no_vgg_loss is True
    assert load_config(ROOT / "configs" / "spade_synth_vae.yaml").model.use_vae is True
    assert load_config(ROOT / "configs" / "spade_cityscapes.yaml").data.semantic_nc == 36


def test_config_errors_name_the_key():
    for bad, key in (
        ({"num_upsampling_layers": "lots"}, "num_upsampling_layers"),
        ({"param_free_norm": "group"}, "param_free_norm"),
        ({"spade_ks": 4}, "spade_ks"),
        ({"lambda_kld": -1}, "lambda"),
    ):
        with pytest.raises(ConfigError, match=key):
            config_from_dict({"family": "spade", "model": bad})
