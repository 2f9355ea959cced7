"""The residual block of the ResNet generators (pix2pix's Johnson et al. generator, pix2pixHD's G1/G2) and the
padding layer factory they share; state-dict keys ``conv_block.<i>`` as in both official code bases."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from .blocks import NormKind, norm_layer

Padding = Literal["reflect", "replicate", "zero"]
_PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


def pad_layers(padding: Padding, width: int) -> list[nn.Module]:
    """``[ReflectionPad2d(width)]`` / ``[ReplicationPad2d(width)]``, or ``[]`` for zero padding (done by the conv)."""
    if padding == "zero":
        return []
    if padding not in _PADS:
        raise ValueError(f"padding: unknown padding {padding!r}; choose reflect, replicate or zero")
    return [_PADS[padding](width)]


class ResnetBlock(nn.Module):
    """``x + (pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm)(x)``."""

    def __init__(
        self, dim: int, norm: NormKind = "instance", padding: Padding = "reflect", dropout: bool = False, bias=True
    ):
        super().__init__()
        make_norm, p = norm_layer(norm), int(padding == "zero")
        layers = [*pad_layers(padding, 1), nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [*pad_layers(padding, 1), nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_block(x).add_(x)
