"""MSG U-Net: per-scale outputs and discriminators, loss weights, the input pyramid, presets and cost."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from pixtrans.config import DataConfig, config_from_dict
from pixtrans.errors import ConfigError
from pixtrans.families import build_model, presets
from pixtrans.families.msg_unet import MSGUNet, MSGUNetConfig, MSGUNetGenerator, pyramid

DATA = DataConfig(label_nc=5, no_instance=False)  # 5 labels + boundary = 6 input channels


def _model(**kw) -> MSGUNet:
    torch.manual_seed(0)
    cfg = MSGUNetConfig(ngf=8, ndf=8, n_scales=3, n_extra_down=1, no_vgg_loss=True, **kw)
    return MSGUNet(cfg, DATA)


def _batch(h: int = 32, w: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 5, (2, 1, h // 4, w // 4), generator=g).repeat_interleave(4, 2).repeat_interleave(4, 3)
    return {"input": label, "target": torch.rand(2, 3, h, w, generator=g) * 2 - 1}


def test_one_output_per_scale_coarse_to_fine():
    G = MSGUNetGenerator(6, 3, ngf=8, n_scales=4, n_extra_down=1)
    assert G.size_multiple == 16
    outs = G(torch.randn(1, 6, 32, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 3, 4, 8), (1, 3, 8, 16), (1, 3, 16, 32), (1, 3, 32, 64)]
    assert all(o.abs().max() <= 1 for o in outs)  # tanh branches


def test_model_generate_translate_and_discriminators():
    m = _model()
    assert len(m.D) == 3 and m.size_multiple == 8
    assert all(d.model0[0].in_channels == 6 + 3 for d in m.D)  # cat(source, image) per scale
    x = m.prepare(_batch())
    fakes = m.generate(x)
    assert [f.shape[-1] for f in fakes] == [8, 16, 32]
    preds = m.discriminate(m.scales(x["input"]), fakes)
    assert len(preds) == 3 and all(len(p) == 3 + 2 for p in preds)  # n_layers_D + 2 features each
    m.eval()
    res = m.translate(x)
    assert res.image.shape == (2, 3, 32, 32) and len(res.scales) == 3
    assert torch.equal(res.image, res.scales[-1])
    assert m.inference_module()(x["input"]).shape == (2, 3, 32, 32)


def test_without_intermediate_outputs_one_output_and_one_d():
    m = _model(intermediate_outputs=False)
    x = m.prepare(_batch())
    fakes = m.generate(x)
    assert len(fakes) == 1 and fakes[0].shape == (2, 3, 32, 32) and len(m.D) == 1
    assert set(m.g_losses(x, fakes)) == {"G_GAN", "G_FM", "G_L1", "G_SSIM"}
    # the encoder still takes the source at every scale
    assert len(m.G.merge) == 2


def test_pyramid_reaches_every_encoder_stage():
    G = MSGUNetGenerator(6, 3, ngf=8, n_scales=4, n_extra_down=1)
    x = torch.randn(1, 6, 32, 32)
    sources = [s.detach().requires_grad_(True) for s in pyramid(x, 4)]
    assert [s.shape[-1] for s in sources] == [4, 8, 16, 32]
    out = G(x, sources)
    assert torch.allclose(out[-1], G(x)[-1], atol=1e-6)  # the default pyramid is the same one
    out[-1].square().sum().backward()  # only the full-resolution output
    for s in sources:
        assert s.grad is not None and s.grad.abs().sum() > 0, f"the {s.shape[-1]} px source gets no gradient"
    with pytest.raises(ValueError, match="expected 4 source scales"):
        G(x, sources[:3])


def test_gan_fm_vgg_summed_over_scales_with_their_weights(tmp_path):
    from pixtrans.layers.vgg import save_random_vgg19

    vgg = save_random_vgg19(tmp_path / "vgg.safetensors", classifier=False)
    x = _batch()
    losses = {}
    for feat, vgg_w in ((10.0, 0.25), (20.0, 0.5)):
        torch.manual_seed(0)
        cfg = MSGUNetConfig(
            ngf=8, ndf=8, n_scales=3, n_extra_down=1, lambda_feat=feat, lambda_vgg=vgg_w, vgg_weights=str(vgg)
        )
        m = MSGUNet(cfg, DATA)
        xp = m.prepare(x)
        losses[feat] = m.g_losses(xp, m.generate(xp))
    a, b = losses[10.0], losses[20.0]
    assert torch.allclose(b["G_FM"], 2 * a["G_FM"]) and torch.allclose(b["G_VGG"], 2 * a["G_VGG"])
    assert torch.allclose(b["G_GAN"], a["G_GAN"])
    # FM is lambda_feat * Σ_scales Σ_layers mean |D(real) - D(fake)| (the MSG U-Net paper's eq. 1)
    fakes = m.generate(xp)
    src, real = m.scales(xp["input"]), m.scales(xp["target"])
    pf, pr = m.discriminate(src, fakes), m.discriminate(src, real)
    fm = sum(F.l1_loss(f, r) for f_k, r_k in zip(pf, pr) for f, r in zip(f_k[:-1], r_k[:-1]))
    assert torch.allclose(m.g_losses(xp, fakes)["G_FM"], 20.0 * fm, rtol=1e-4)
    gan = sum(((p[-1] - 1) ** 2).mean() for p in pf)  # lsgan, summed over scales
    assert torch.allclose(m.g_losses(xp, fakes)["G_GAN"], gan, rtol=1e-4)


def test_d_losses_sum_scales_and_train_every_d():
    m = _model()
    x = m.prepare(_batch())
    fakes = [f.detach() for f in m.generate(x)]
    ld = m.d_losses(x, fakes)
    src, real = m.scales(x["input"]), m.scales(x["target"])
    with torch.no_grad():
        want_fake = 0.5 * sum((p[-1] ** 2).mean() for p in m.discriminate(src, fakes))
        want_real = 0.5 * sum(((p[-1] - 1) ** 2).mean() for p in m.discriminate(src, real))
    assert torch.allclose(ld["D_fake"], want_fake, rtol=1e-4) and torch.allclose(ld["D_real"], want_real, rtol=1e-4)
    sum(ld.values()).backward()
    for k, d in enumerate(m.D):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters()), f"D_{k} gets no gradient"
    assert all(p.grad is None for p in m.G.parameters())  # fakes were detached


def test_g_losses_reach_every_output_branch():
    m = _model()
    x = m.prepare(_batch())
    sum(m.g_losses(x, m.generate(x)).values()).backward()
    for k, branch in enumerate(m.G.to_rgb):
        assert branch[0].weight.grad.abs().sum() > 0, f"output branch {k} gets no gradient"


def test_config_errors_name_the_key():
    base = {"family": "msg_unet", "data": {"label_nc": 5}}
    with pytest.raises(ConfigError, match="n_scales"):
        config_from_dict({**base, "model": {"n_scales": 1, "n_extra_down": 0}})
    with pytest.raises(ConfigError, match="max_ch"):
        config_from_dict({**base, "model": {"ngf": 64, "max_ch": 32}})
    with pytest.raises(ConfigError, match="skip"):
        config_from_dict({**base, "model": {"skip": "sum"}})
    with pytest.raises(ConfigError, match="ngf_typo"):
        config_from_dict({**base, "model": {"ngf_typo": 3}})


def test_presets_match_pix2pixhd_inputs_and_are_cheaper():
    table = presets()
    assert {"msg_unet", "msg_unet_4scale"} <= set(table)
    flops, channels = {}, {}
    for name in ("msg_unet", "pix2pixhd_local"):
        with torch.device("meta"):  # shapes only: FLOPs without computing anything
            m = build_model(config_from_dict(table[name]))
            x = torch.empty(1, m.in_channels, 512, 1024)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            m.inference_module()(x)
        flops[name], channels[name] = fc.get_total_flops(), m.in_channels
        if name == "msg_unet":
            assert m.size_multiple == 256 and len(m.D) == 5
    assert channels["msg_unet"] == channels["pix2pixhd_local"] == 36
    assert flops["pix2pixhd_local"] >= 2.5 * flops["msg_unet"]


def test_reconstruction_term_without_vgg_on_every_scale():
    m = _model()
    x = m.prepare(_batch())
    losses = m.g_losses(x, m.generate(x))
    assert {"G_L1", "G_SSIM"} <= set(losses)
    off = _model(lambda_L1=0, lambda_ssim=0)
    assert not {"G_L1", "G_SSIM"} & set(off.g_losses(x, off.generate(x)))


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_upsample_options_same_shapes(upsample):
    G = MSGUNetGenerator(6, 3, ngf=8, n_scales=3, n_extra_down=1, upsample=upsample)
    assert [o.shape[-1] for o in G(torch.randn(1, 6, 32, 32))] == [8, 16, 32]
    kinds = {type(m).__name__ for m in G.up.modules()}
    assert ("ConvTranspose2d" in kinds) == (upsample == "transposed")
    with pytest.raises(ValueError, match="upsample"):
        MSGUNetGenerator(6, 3, ngf=8, n_scales=3, n_extra_down=1, upsample="bicubic")
