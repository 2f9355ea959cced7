"""Discriminators shared by the families: PatchGAN (pix2pix / pix2pixHD layouts), pixel GAN, multi-scale wrapper.

State-dict keys follow the official code so its weights load by name:

- :class:`NLayerDiscriminator` ``variant="pix2pix"`` matches junyanz ``NLayerDiscriminator`` (``model.<i>``);
  ``variant="pix2pixhd"`` matches NVIDIA's (padding 2, biased convs, width capped at 512; ``model<j>.<i>``
  groups when it returns features, ``model.<i>`` otherwise).
- :class:`MultiScaleDiscriminator` names its children ``discriminator_<i>`` (SPADE);
  :func:`pixtrans.families.pix2pixhd.official.pix2pixhd_d_keys` renames an official pix2pixHD
  ``MultiscaleDiscriminator`` state dict to this layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.blocks import NormKind, conv_bias, norm_layer


def _run_groups(groups: list[nn.Module], x: Tensor) -> list[Tensor]:
    feats = []
    for g in groups:
        x = g(x)
        feats.append(x)
    return feats


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, one stride-1 conv, then a 1-channel 4x4 conv (logits).

    The default (``n_layers=3``) is pix2pix's 70x70 PatchGAN. With ``features=True`` the forward pass returns
    the output of every block (``n_layers + 2`` tensors, the last being the prediction) for feature matching.
    """

    def __init__(
        self,
        in_ch: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: NormKind = "batch",
        features: bool = False,
        variant: Literal["pix2pix", "pix2pixhd"] = "pix2pix",
    ):
        super().__init__()
        if n_layers < 1 or ndf < 1 or in_ch < 1:
            raise ValueError("NLayerDiscriminator: in_ch, ndf and n_layers must be >= 1")
        if variant not in ("pix2pix", "pix2pixhd"):
            raise ValueError(f"NLayerDiscriminator: unknown variant {variant!r} (pix2pix or pix2pixhd)")
        hd = variant == "pix2pixhd"
        self.features, self.n_layers = features, n_layers
        pad, bias = (2, True) if hd else (1, conv_bias(norm))
        make_norm = norm_layer(norm)

        def width(n: int) -> int:
            if n == 0:
                return ndf
            return min(ndf * 2**n, 512) if hd else ndf * min(2**n, 8)

        groups = [[nn.Conv2d(in_ch, ndf, 4, 2, pad), nn.LeakyReLU(0.2, True)]]
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            groups.append(
                [
                    nn.Conv2d(width(n - 1), width(n), 4, stride, pad, bias=bias),
                    make_norm(width(n)),
                    nn.LeakyReLU(0.2, True),
                ]
            )
        groups.append([nn.Conv2d(width(n_layers), 1, 4, 1, pad)])

        self.grouped = hd and features
        if self.grouped:
            for j, g in enumerate(groups):
                self.add_module(f"model{j}", nn.Sequential(*g))
        else:
            self.model = nn.Sequential(*[m for g in groups for m in g])
            ends = [len(g) for g in groups]
            self._ends = [sum(ends[: j + 1]) for j in range(len(ends))]

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if self.grouped:
            return _run_groups([getattr(self, f"model{j}") for j in range(self.n_layers + 2)], x)
        if not self.features:
            return self.model(x)
        feats, start = [], 0
        for end in self._ends:
            x = self.model[start:end](x)
            feats.append(x)
            start = end
        return feats


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (pixelGAN) from the official pix2pix code; ``features=True`` returns [h1, h2, logits]."""

    def __init__(self, in_ch: int, ndf: int = 64, norm: NormKind = "batch", features: bool = False):
        super().__init__()
        bias = conv_bias(norm)
        self.features = features
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm)(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        if not self.features:
            return self.net(x)
        return _run_groups([self.net[0:2], self.net[2:5], self.net[5:]], x)


def downsample(x: Tensor) -> Tensor:
    """The multi-scale discriminators' 2x downsampling: 3x3 average pool, stride 2, padding ignored."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class MultiScaleDiscriminator(nn.Module):
    """``num_D`` discriminators from ``make_d``; ``discriminator_i`` sees the input downsampled ``i`` times.

    Returns one list per scale (full resolution first) of that discriminator's features, the last entry being
    its prediction; a discriminator returning a single tensor gives a one-element list.
    """

    def __init__(self, make_d: Callable[[], nn.Module], num_D: int):
        super().__init__()
        if num_D < 1:
            raise ValueError("MultiScaleDiscriminator: num_D must be >= 1")
        self.num_D = num_D
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", make_d())

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i in range(self.num_D):
            if i:
                x = downsample(x)
            y = getattr(self, f"discriminator_{i}")(x)
            out.append(list(y) if isinstance(y, (list, tuple)) else [y])
        return out
