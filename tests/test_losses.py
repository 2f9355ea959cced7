"""GAN losses, feature matching and KL on inputs with known values."""

from __future__ import annotations

import math

import pytest
import torch

from pixtrans.losses import GANLoss, feature_matching_loss, kl_loss


def full(v: float, shape=(2, 1, 4, 4)) -> torch.Tensor:
    return torch.full(shape, float(v))


@pytest.mark.parametrize("real", [True, False])
def test_vanilla_is_bce_with_logits(real):
    loss = GANLoss("vanilla")
    assert loss(full(0.0), real).item() == pytest.approx(math.log(2.0))
    # a confident correct logit costs ~0, a confident wrong one ~|logit|
    right, wrong = (8.0, -8.0) if real else (-8.0, 8.0)
    assert loss(full(right), real).item() < 1e-3
    assert loss(full(wrong), real).item() == pytest.approx(8.0, abs=1e-3)


def test_lsgan_values():
    loss = GANLoss("lsgan")
    assert loss(full(0.5), True).item() == pytest.approx(0.25)
    assert loss(full(0.5), False).item() == pytest.approx(0.25)
    assert loss(full(1.0), True).item() == pytest.approx(0.0)
    assert loss(full(3.0), False).item() == pytest.approx(9.0)
    # label smoothing targets
    assert GANLoss("lsgan", real_label=0.9)(full(0.9), True).item() == pytest.approx(0.0)


def test_hinge_discriminator_semantics():
    loss = GANLoss("hinge")
    # real: -mean(min(0, x - 1)); fake: -mean(min(0, -x - 1))
    assert loss(full(2.0), True).item() == pytest.approx(0.0)
    assert loss(full(0.0), True).item() == pytest.approx(1.0)
    assert loss(full(-1.0), True).item() == pytest.approx(2.0)
    assert loss(full(-2.0), False).item() == pytest.approx(0.0)
    assert loss(full(0.5), False).item() == pytest.approx(1.5)
    mixed = torch.tensor([3.0, 0.0])  # per element: 0 and 1 -> mean 0.5
    assert loss(mixed, True).item() == pytest.approx(0.5)


def test_hinge_generator_semantics():
    loss = GANLoss("hinge")
    assert loss(full(3.0), True, for_discriminator=False).item() == pytest.approx(-3.0)
    assert loss(full(-0.5), True, for_discriminator=False).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="real"):
        loss(full(1.0), False, for_discriminator=False)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_generator_loss_pushes_predictions_up(mode):
    pred = torch.zeros(1, 1, 3, 3, requires_grad=True)
    GANLoss(mode)(pred, True, for_discriminator=False).backward()
    assert (pred.grad < 0).all()  # gradient descent raises the logits towards "real"


def test_multiscale_outputs_are_averaged():
    feat = torch.randn(1, 4, 8, 8)
    scales = [[feat, full(0.5)], [feat, full(1.0)]]
    assert GANLoss("lsgan")(scales, True).item() == pytest.approx((0.25 + 0.0) / 2)
    assert GANLoss("lsgan", scale_reduction="sum")(scales, True).item() == pytest.approx(0.25)
    # a list of bare tensors is a list of scales too
    assert GANLoss("lsgan")([full(0.5), full(1.0)], True).item() == pytest.approx(0.125)
    # hinge per scale, then mean
    assert GANLoss("hinge")([[feat, full(0.0)], [full(-1.0)]], True).item() == pytest.approx(1.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wasserstein")
    with pytest.raises(ValueError):
        GANLoss("lsgan")([], True)


def _feats(seed: int, n_layers: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 4, 8, 8, generator=g) for _ in range(n_layers + 2)]


def test_feature_matching_zero_for_identical_features():
    real = [_feats(0), _feats(1)]
    fake = [[f.clone() for f in scale] for scale in real]
    assert feature_matching_loss(real, fake).item() == 0.0


def test_feature_matching_official_weighting():
    real = _feats(0)  # n_layers_D = 3 -> 4 matched features + prediction
    fake = [f + 1.0 for f in real[:-1]] + [real[-1] + 100.0]  # the prediction must not count
    # one scale: 4 features * L1 1 * (4 / (3 + 1)) * weight 10 / num_D 1 = 40
    assert feature_matching_loss(real, fake, weight=10.0).item() == pytest.approx(40.0)
    # two identical scales average to the same value (D_weights = 1 / num_D)
    assert feature_matching_loss([real, real], [fake, fake], weight=10.0).item() == pytest.approx(40.0)
    two_layers = real[:3] + real[-1:]  # n_layers_D = 2 -> 3 features weighted 4 / 3
    two_fake = fake[:3] + fake[-1:]
    assert feature_matching_loss(two_layers, two_fake, weight=1.0).item() == pytest.approx(4.0)
    # SPADE weighting: no per-layer factor
    assert feature_matching_loss(two_layers, two_fake, weight=1.0, layer_weight=1.0).item() == pytest.approx(3.0)


def test_feature_matching_gradient_reaches_fake_only():
    real = [f.requires_grad_() for f in _feats(0)]
    fake = [f.requires_grad_() for f in _feats(1)]
    loss = feature_matching_loss([real], [fake])
    assert loss.item() > 0
    loss.backward()
    assert all(r.grad is None for r in real)
    assert all(f.grad is not None for f in fake[:-1]) and fake[-1].grad is None


def test_feature_matching_shape_mismatch():
    with pytest.raises(ValueError, match="scales"):
        feature_matching_loss([_feats(0)], [_feats(1), _feats(2)])


def test_kl_loss():
    zero = torch.zeros(2, 8)
    assert kl_loss(zero, zero).item() == 0.0
    # mu = 1, logvar = 0: each element contributes 0.5
    assert kl_loss(torch.ones(2, 8), zero).item() == pytest.approx(8.0)
    mu, logvar = torch.randn(4, 16), torch.randn(4, 16)
    assert kl_loss(mu, logvar).item() > 0


# ---------------------------------------------------------------------------------------------- reconstruction
def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    from pixtrans.losses import ssim

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=g) * 2 - 1
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    assert ssim(noisy, x).item() < 0.9
    assert 0 < ssim(x[..., :6, :6], x[..., :6, :6]).item() <= 1.0 + 1e-6  # smaller than the window: window fits


def test_reconstruction_terms_weights_and_scales():
    from pixtrans.losses import reconstruction_loss

    real = torch.zeros(1, 3, 8, 8)
    fake = torch.zeros(1, 3, 8, 8)
    fake[..., ::2, ::2] = 1.0  # mean |fake - real| = 0.25 at full resolution, and at every 2x pooled scale
    one = reconstruction_loss(fake, real, 4.0, 0.0, scales=1)
    assert set(one) == {"G_L1"} and one["G_L1"].item() == pytest.approx(1.0)
    fake2 = torch.zeros(1, 3, 8, 8)
    fake2[..., :4, :] = 1.0  # L1 0.5 at each scale
    assert reconstruction_loss(fake2, real, 2.0, 0.0, scales=3)["G_L1"].item() == pytest.approx(1.0)
    both = reconstruction_loss(fake.requires_grad_(), real, 1.0, 2.0)
    assert set(both) == {"G_L1", "G_SSIM"} and both["G_SSIM"].item() > 0
    assert reconstruction_loss(fake, real, 0.0, 0.0) == {}


def test_reconstruction_defaults_follow_the_vgg_loss():
    from pixtrans.errors import ConfigError
    from pixtrans.families.msg_unet import MSGUNetConfig
    from pixtrans.families.pix2pix.family import Pix2PixConfig
    from pixtrans.families.pix2pixhd.family import Pix2PixHDConfig
    from pixtrans.families.spade.family import SPADEConfig
    from pixtrans.losses import REC_L1_NO_VGG, REC_SSIM_NO_VGG

    for cls in (Pix2PixHDConfig, SPADEConfig, MSGUNetConfig):
        assert cls().rec_weights(vgg_on=True) == (0.0, 0.0)  # published recipes unchanged
        assert cls().rec_weights(vgg_on=False) == (REC_L1_NO_VGG, REC_SSIM_NO_VGG)
        assert cls(lambda_L1=3, lambda_ssim=0).rec_weights(vgg_on=False) == (3.0, 0.0)
        with pytest.raises(ValueError, match="rec_scales"):
            cls(rec_scales=0)
    assert Pix2PixConfig().rec_weights(vgg_on=False) == (100.0, 0.0)  # the paper's L1 x100
    from pixtrans.config import config_from_dict

    with pytest.raises(ConfigError, match="lambda_ssim"):
        config_from_dict({"family": "spade", "model": {"lambda_ssim": -1}})
