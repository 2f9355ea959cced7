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
