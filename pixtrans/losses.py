"""GAN losses (vanilla, LSGAN, hinge), discriminator feature matching and the VAE's KL term.

The perceptual VGG loss lives in :mod:`pixtrans.layers.vgg` (it needs pretrained weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
