"""GAN losses (vanilla, LSGAN, hinge), discriminator feature matching, the VAE's KL term and the reconstruction
term (multi-scale L1 + SSIM) every family can add.

The perceptual VGG loss lives in :mod:`pixtrans.layers.vgg` (it needs pretrained weights); the reconstruction term
needs none and is on by default in pix2pixHD, SPADE and MSG U-Net when their VGG loss is off
(:class:`ReconstructionConfig`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import Tensor, nn

from .config import Section

GanMode = Literal["vanilla", "lsgan", "hinge"]
GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")

# A discriminator output: a tensor, a list of features (last = prediction), or one of those per scale.
DOutput = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]


def _predictions(pred: DOutput) -> list[Tensor]:
    """The prediction of every scale: a tensor is one scale; list entries that are lists contribute their last."""
    if isinstance(pred, Tensor):
        return [pred]
    if not isinstance(pred, (list, tuple)) or len(pred) == 0:
        raise ValueError("GANLoss: expected a tensor or a non-empty list of per-scale outputs")
    return [p[-1] if isinstance(p, (list, tuple)) else p for p in pred]


class GANLoss(nn.Module):
    """Adversarial loss on raw discriminator outputs (logits); no parameters.

    ``vanilla``: binary cross-entropy with logits; ``lsgan``: mean squared error to the target label;
    ``hinge`` (SPADE): for D ``-mean(min(0, -1 + x))`` on reals and ``-mean(min(0, -1 - x))`` on fakes, for G
    ``-mean(x)``. A list of per-scale outputs is reduced with ``scale_reduction``: ``mean`` as in SPADE (and
    our default for every family), ``sum`` as in the official pix2pixHD code.
    """

    def __init__(
        self,
        mode: GanMode = "vanilla",
        real_label: float = 1.0,
        fake_label: float = 0.0,
        scale_reduction: Literal["mean", "sum"] = "mean",
    ):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode: unknown GAN loss {mode!r}; choose one of {', '.join(GAN_MODES)}")
        if scale_reduction not in ("mean", "sum"):
            raise ValueError(f"scale_reduction must be 'mean' or 'sum', not {scale_reduction!r}")
        self.mode, self.real_label, self.fake_label = mode, real_label, fake_label
        self.scale_reduction = scale_reduction

    def single(self, pred: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """The loss of one prediction tensor."""
        pred = pred.float()
        if self.mode == "hinge":
            if not for_discriminator:
                if not target_is_real:
                    raise ValueError("GANLoss: the generator's hinge loss always targets 'real'")
                return -pred.mean()
            sign = 1.0 if target_is_real else -1.0
            return -torch.clamp(sign * pred - 1.0, max=0.0).mean()
        target = torch.full_like(pred, self.real_label if target_is_real else self.fake_label)
        if self.mode == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)

    def forward(self, pred: DOutput, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        losses = [self.single(p, target_is_real, for_discriminator) for p in _predictions(pred)]
        total = torch.stack(losses).sum()
        return total / len(losses) if self.scale_reduction == "mean" else total


def _per_scale(feats: Sequence) -> list[Sequence[Tensor]]:
    if isinstance(feats, Tensor) or len(feats) == 0:
        raise ValueError("feature_matching_loss: expected a list of features or a list of per-scale feature lists")
    return [feats] if isinstance(feats[0], Tensor) else list(feats)


def feature_matching_loss(
    real_feats: Sequence, fake_feats: Sequence, weight: float = 10.0, layer_weight: float | None = None
) -> Tensor:
    """pix2pixHD's discriminator feature matching: L1 between fake and (detached) real features.

    Each argument is one discriminator's feature list or a list of them (one per scale); the last entry of each
    list is the prediction and is skipped. Every term is weighted ``weight / num_D * layer_weight`` with
    ``layer_weight`` defaulting to pix2pixHD's ``4 / (n_layers_D + 1)`` (= 4 / number of matched features);
    pass ``layer_weight=1.0`` for SPADE's weighting.
    """
    real, fake = _per_scale(real_feats), _per_scale(fake_feats)
    if len(real) != len(fake):
        raise ValueError(f"feature_matching_loss: {len(real)} real scales but {len(fake)} fake scales")
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for r, f in zip(real, fake, strict=True):
        if len(r) != len(f) or len(f) < 2:
            raise ValueError("feature_matching_loss: each scale needs the same >= 2 entries for real and fake")
        lw = 4.0 / (len(f) - 1) if layer_weight is None else layer_weight
        for rj, fj in zip(r[:-1], f[:-1], strict=True):
            total = total + F.l1_loss(fj.float(), rj.detach().float()) * lw
    return total * (weight / len(fake))


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """SPADE's KLD term: ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` (summed, not averaged)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


# ---------------------------------------------------------------------------------------------- reconstruction
REC_L1_NO_VGG = 10.0  # lambda_L1 when it is left unset (None) and the family's VGG loss is off
REC_SSIM_NO_VGG = 10.0  # lambda_ssim likewise


class ReconstructionConfig(Section):
    """The reconstruction term's settings, one spelling in every family's ``model`` section.

    ``lambda_L1`` weighs the mean L1 distance to the target, averaged over ``rec_scales`` pyramid scales (1 = full
    resolution only; each further scale is a 2x average-pooled copy of fake and target, which weighs colour and
    layout over texture); ``lambda_ssim`` weighs ``1 - SSIM`` (Gaussian 11x11 window, sigma 1.5, images mapped to
    [0, 1]) at full resolution. ``None`` (the default) means automatic: :data:`REC_L1_NO_VGG` /
    :data:`REC_SSIM_NO_VGG` when the family's VGG loss is off (``no_vgg_loss`` or ``lambda_vgg: 0``), else 0, so
    the published recipes with VGG are unchanged. 0 switches a term off.
    """

    lambda_L1: float | None = None  # L1 to the target; None = 10 without VGG loss, 0 with it
    lambda_ssim: float | None = None  # 1 - SSIM to the target; None = 10 without VGG loss, 0 with it
    rec_scales: int = 1  # pyramid scales the L1 is averaged over (1 = full resolution only)

    @model_validator(mode="after")
    def _check_rec(self):
        if (self.lambda_L1 or 0) < 0 or (self.lambda_ssim or 0) < 0:
            raise ValueError("lambda_L1 and lambda_ssim are loss weights and must be >= 0")
        if self.rec_scales < 1:
            raise ValueError("rec_scales must be >= 1 (1 = full resolution only)")
        return self

    def rec_weights(self, vgg_on: bool) -> tuple[float, float]:
        """(L1 weight, SSIM weight) with the automatic defaults resolved for a model whose VGG loss is ``vgg_on``."""
        l1 = self.lambda_L1 if self.lambda_L1 is not None else (0.0 if vgg_on else REC_L1_NO_VGG)
        ss = self.lambda_ssim if self.lambda_ssim is not None else (0.0 if vgg_on else REC_SSIM_NO_VGG)
        return l1, ss


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    t = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of two image batches in [-1, 1] (computed on [0, 1], C1 = 0.01², C2 = 0.03², valid Gaussian
    window, per channel); differentiable. Images smaller than ``window`` use an odd window that fits."""
    x, y = (x.float() + 1) / 2, (y.float() + 1) / 2
    size = min(window, *x.shape[-2:])
    size -= 1 - size % 2
    c = x.shape[1]
    w = _gaussian_window(size, sigma, c, x)
    mx, my = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mx * mx
    syy = F.conv2d(y * y, w, groups=c) - my * my
    sxy = F.conv2d(x * y, w, groups=c) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


def reconstruction_loss(fake: Tensor, real: Tensor, l1: float, ssim_weight: float, scales: int = 1) -> dict:
    """Weighted reconstruction terms ``{"G_L1": ..., "G_SSIM": ...}`` (a term with weight 0 is left out).

    ``G_L1`` = ``l1`` x mean over ``scales`` pyramid scales of the mean absolute error; ``G_SSIM`` =
    ``ssim_weight`` x (1 - SSIM) at full resolution. ``real`` is not differentiated."""
    out: dict[str, Tensor] = {}
    real = real.detach().float()
    fake = fake.float()
    if l1 > 0:
        f, r, terms = fake, real, []
        for k in range(scales):
            if k:
                if min(f.shape[-2:]) < 2:
                    break
                f, r = F.avg_pool2d(f, 2), F.avg_pool2d(r, 2)
            terms.append(F.l1_loss(f, r))
        out["G_L1"] = l1 * torch.stack(terms).mean()
    if ssim_weight > 0:
        out["G_SSIM"] = ssim_weight * (1 - ssim(fake, real))
    return out
