"""pix2pix networks (generator, discriminator and encoder modules, typed arguments)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ...layers.blocks import NormKind, conv_bias, norm_layer
from ...layers.resnet import ResnetBlock


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> [down -> submodule -> up]``, concatenated with ``x`` unless outermost."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: NormKind = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        make_norm = norm_layer(norm)
        down_conv = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, 2, 1, bias=bias)
        if outermost:
            layers = [
                down_conv,
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1),
                nn.Tanh(),
            ]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(True), up_conv, make_norm(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, make_norm(inner_nc), submodule]
            layers += [nn.ReLU(True), up_conv, make_norm(outer_nc)] + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        # The official block's in-place LeakyReLU also rewrites x, so its skip carries the activated x: same here.
        x = self.model[0](x)
        return torch.cat([x, self.model[1:](x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (so inputs must be multiples of ``2**num_downs``).

    Widths ngf, 2ngf, 4ngf, then 8ngf for the rest; ``dropout`` (0.5) sits in the ``num_downs - 5`` decoder
    blocks just above the innermost one (three for unet_256), as in the official code.
    """

    def __init__(
        self, in_ch: int, out_ch: int, num_downs: int, ngf: int = 64, norm: NormKind = "batch", dropout: bool = True
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"UnetGenerator: num_downs must be >= 5, got {num_downs}")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(out_ch, ngf, input_nc=in_ch, submodule=block, outermost=True, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s generator: 7x7 conv, two stride-2 downs, ``n_blocks`` residual blocks, two ups, 7x7 conv."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        ngf: int = 64,
        norm: NormKind = "batch",
        dropout: bool = False,
        n_blocks: int = 9,
        padding: Literal["reflect", "replicate", "zero"] = "reflect",
    ):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"ResnetGenerator: n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        make_norm = norm_layer(norm)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, padding, dropout, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            up = nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias)
            layers += [up, make_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
