"""msg_unet networks (generator, discriminator and encoder modules, typed arguments)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...layers.blocks import NormKind, conv_bias, norm_layer

VGG_MIN_SIZE = 16  # VGG19 pools 4 times before relu5_1: smaller scales get no perceptual loss


def downsample(x: Tensor) -> Tensor:
    """The pyramid's 2x downsampling (2x2 average = area resize for even sizes)."""
    return F.avg_pool2d(x, 2)


def pyramid(x: Tensor, n: int) -> list[Tensor]:
    """``x`` at ``n`` scales, coarse to fine (the last is ``x`` itself)."""
    out = [x]
    for _ in range(n - 1):
        out.append(downsample(out[-1]))
    return out[::-1]


Upsample = Literal["transposed", "resize"]


def _block(cin: int, cout: int, k: int, stride: int, norm: NormKind, transposed: bool = False) -> nn.Sequential:
    """conv (or transposed conv) -> norm -> LeakyReLU(0.2); 'same' padding for stride 1, exact 2x for stride 2."""
    conv_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    pad = 1 if stride == 2 else k // 2
    conv = conv_cls(cin, cout, k, stride, pad, bias=conv_bias(norm))
    return nn.Sequential(conv, norm_layer(norm)(cout), nn.LeakyReLU(0.2, True))


def _up_block(cin: int, cout: int, norm: NormKind, upsample: Upsample) -> nn.Sequential:
    """2x upsampling block: the paper's 4x4 stride-2 transposed conv, or (``resize``) nearest 2x + 3x3 conv, which
    covers every output pixel with the same number of weights and so leaves no checkerboard pattern."""
    if upsample == "transposed":
        return _block(cin, cout, 4, 2, norm, transposed=True)
    conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=conv_bias(norm))
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), conv, norm_layer(norm)(cout), nn.LeakyReLU(0.2, True)
    )


class MSGUNetGenerator(nn.Module):
    """The multi-scale-gradient U-Net. ``forward(x) -> list[Tensor]``: one image per pyramid scale, coarse to fine
    (only the full-resolution one with ``intermediate_outputs=False``).

    Level ``l`` (0 = full resolution) has width ``min(ngf * 2**l, max_ch)``; levels ``1 .. n_scales-1`` take the
    resized source, levels up to ``n_scales - 1 + n_extra_down`` (the bottleneck) do not. Inputs must have sides
    divisible by ``2 ** (n_scales - 1 + n_extra_down)`` (:attr:`size_multiple`).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 3,
        ngf: int = 16,
        n_scales: int = 5,
        n_extra_down: int = 4,
        max_ch: int = 512,
        norm: NormKind = "instance",
        skip: Literal["add", "cat"] = "add",
        intermediate_outputs: bool = True,
        upsample: Upsample = "transposed",
    ):
        super().__init__()
        if min(in_ch, out_ch, ngf, n_scales) < 1 or n_extra_down < 0 or max_ch < ngf:
            raise ValueError("MSGUNetGenerator: in_ch, out_ch, ngf, n_scales >= 1, n_extra_down >= 0, max_ch >= ngf")
        if n_scales + n_extra_down < 2:
            raise ValueError("MSGUNetGenerator: needs at least one downsampling (n_scales + n_extra_down >= 2)")
        if skip not in ("add", "cat"):
            raise ValueError(f"MSGUNetGenerator: skip must be 'add' or 'cat', not {skip!r}")
        self.n_scales, self.n_levels, self.skip = n_scales, n_scales - 1 + n_extra_down, skip
        w = self.widths = [min(ngf * 2**level, max_ch) for level in range(self.n_levels + 1)]
        self.stem = nn.Sequential(_block(in_ch, w[0], 3, 1, norm), _block(w[0], w[0], 3, 1, norm))
        self.down = nn.ModuleList(_block(w[i], w[i + 1], 4, 2, norm) for i in range(self.n_levels))
        self.merge = nn.ModuleList(_block(w[i] + in_ch, w[i], 1, 1, norm) for i in range(1, n_scales))
        # up[l] / fuse[l] produce level l (from level l + 1); to_rgb[l] is the output branch of level l
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"MSGUNetGenerator: upsample must be 'transposed' or 'resize', not {upsample!r}")
        self.up = nn.ModuleList(_up_block(w[i + 1], w[i], norm, upsample) for i in range(self.n_levels))
        k = 2 if skip == "cat" else 1
        self.fuse = nn.ModuleList(_block(k * w[i], w[i], 3, 1, norm) for i in range(self.n_levels))
        n_out = n_scales if intermediate_outputs else 1
        self.to_rgb = nn.ModuleList(nn.Sequential(nn.Conv2d(w[i], out_ch, 1), nn.Tanh()) for i in range(n_out))

    @property
    def size_multiple(self) -> int:
        return 2**self.n_levels

    def forward(self, x: Tensor, sources: Sequence[Tensor] | None = None) -> list[Tensor]:
        """``sources``: the input pyramid, coarse to fine (``n_scales`` tensors, the last = ``x``); by default
        ``x`` is average-pooled per scale. Passing it explicitly lets callers perturb or differentiate each scale."""
        if sources is not None and len(sources) != self.n_scales:
            raise ValueError(f"MSGUNetGenerator: expected {self.n_scales} source scales, got {len(sources)}")
        src = x if sources is None else sources[-1]
        h = self.stem(src)
        skips = []
        for level, down in enumerate(self.down, 1):
            skips.append(h)
            h = down(h)
            if level < self.n_scales:
                src = downsample(src) if sources is None else sources[-1 - level]
                h = torch.cat([h, src], 1)
                h = self.merge[level - 1](h)
        outs = []
        for level in range(self.n_levels - 1, -1, -1):
            # one name for the running tensor, so that inference frees each level's inputs as soon as it can
            h = self._join(self.up[level](h), skips.pop())
            h = self.fuse[level](h)
            if level < len(self.to_rgb):
                outs.append(self.to_rgb[level](h))
        return outs

    def _join(self, up: Tensor, skip: Tensor) -> Tensor:
        if self.skip == "cat":
            return torch.cat([up, skip], 1)
        return up.add_(skip) if not torch.is_grad_enabled() else up + skip  # in place only without autograd


# ---------------------------------------------------------------------------------------------------- family
