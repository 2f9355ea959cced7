"""pix2pix (Isola et al. 2017): U-Net or ResNet generator, conditional PatchGAN, GAN + lambda * L1.

The networks reproduce junyanz/pytorch-CycleGAN-and-pix2pix layer for layer, so official ``latest_net_G.pth`` /
``latest_net_D.pth`` state dicts load by name (``UnetGenerator``: ``model.model.1.model.3...``; ``ResnetGenerator``:
``model.<i>``, blocks ``model.<i>.conv_block.<j>``). Parameter counts match too (unet_256 3->3: 54,413,955).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import Tensor, nn

from ..config import DataConfig, Section
from ..losses import GANLoss
from ..nn.blocks import NormKind, conv_bias, init_weights, norm_layer
from .base import Translation, TranslationModel
from .discriminators import NLayerDiscriminator, PixelDiscriminator


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


_PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


class ResnetBlock(nn.Module):
    """``x + (pad, conv3x3, norm, relu, [dropout], pad, conv3x3, norm)(x)``."""

    def __init__(self, dim: int, padding: str, norm: NormKind, dropout: bool, bias: bool):
        super().__init__()
        if padding not in ("reflect", "replicate", "zero"):
            raise ValueError(f"padding must be reflect, replicate or zero, not {padding!r}")
        p = 1 if padding == "zero" else 0
        make_norm = norm_layer(norm)

        def pad() -> list[nn.Module]:
            return [] if padding == "zero" else [_PADS[padding](1)]

        layers = pad() + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += pad() + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


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
        layers += [ResnetBlock(ngf * 4, padding, norm, dropout, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            up = nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias)
            layers += [up, make_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class Pix2PixConfig(Section):
    """pix2pix model options (defaults: official pix2pix, i.e. unet_256 + 70x70 PatchGAN, vanilla GAN, L1 x100)."""

    netG: Literal["unet", "resnet"] = "unet"
    num_downs: int = 8  # U-Net levels (8 = unet_256, 7 = unet_128)
    n_blocks: int = 9  # ResNet blocks (9 or 6)
    padding: Literal["reflect", "replicate", "zero"] = "reflect"  # ResNet block padding
    ngf: int = 64
    ndf: int = 64
    netD: Literal["basic", "n_layers", "pixel"] = "basic"  # basic = 70x70 PatchGAN (n_layers 3)
    n_layers_D: int = 3  # used by netD n_layers
    norm: NormKind = "batch"
    dropout: bool = True
    gan_mode: Literal["vanilla", "lsgan", "hinge"] = "vanilla"
    lambda_L1: float = 100.0
    init_type: Literal["normal", "xavier", "xavier_uniform", "kaiming", "orthogonal", "none"] = "normal"
    init_gain: float = 0.02
    # False = the paper's test protocol (official test.py without --eval): batch norm with the test image's own
    # statistics and dropout on, so outputs vary per call. translate/test only; export and bench use eval mode.
    eval_mode: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.netG == "unet" and self.num_downs < 5:
            raise ValueError("num_downs must be >= 5 for the U-Net (8 = unet_256, 7 = unet_128)")
        if self.n_blocks < 0:
            raise ValueError("n_blocks must be >= 0")
        if self.ngf < 1 or self.ndf < 1 or self.n_layers_D < 1:
            raise ValueError("ngf, ndf and n_layers_D must be >= 1")
        if self.lambda_L1 < 0:
            raise ValueError("lambda_L1 must be >= 0")
        return self


class Pix2Pix(TranslationModel):
    """The pix2pix family: ``G`` maps the input to the photo, ``D`` judges (input, photo) pairs."""

    family = "pix2pix"
    Config = Pix2PixConfig

    def __init__(self, cfg: Pix2PixConfig, data: DataConfig):
        super().__init__(cfg, data)
        in_ch, out_ch = self.in_channels, data.output_nc
        if cfg.netG == "unet":
            self.G = UnetGenerator(in_ch, out_ch, cfg.num_downs, cfg.ngf, cfg.norm, cfg.dropout)
        else:
            self.G = ResnetGenerator(in_ch, out_ch, cfg.ngf, cfg.norm, cfg.dropout, cfg.n_blocks, cfg.padding)
        if cfg.netD == "pixel":
            self.D = PixelDiscriminator(in_ch + out_ch, cfg.ndf, cfg.norm)
        else:
            n_layers = 3 if cfg.netD == "basic" else cfg.n_layers_D
            self.D = NLayerDiscriminator(in_ch + out_ch, cfg.ndf, n_layers, cfg.norm)
        init_weights(self.G, cfg.init_type, cfg.init_gain)
        init_weights(self.D, cfg.init_type, cfg.init_gain)
        self.gan = GANLoss(cfg.gan_mode)

    @property
    def size_multiple(self) -> int:
        return 2**self.cfg.num_downs if self.cfg.netG == "unet" else 4

    def generate(self, x: dict) -> list[Tensor]:
        return [self.G(x["input"])]

    @torch.no_grad()
    def translate(self, x: dict, style: dict | None = None) -> Translation:
        if self.training or self.cfg.eval_mode:
            return super().translate(x, style)
        with paper_test_mode(self.G):
            return super().translate(x, style)

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        fake = fakes[-1]
        pred = self.D(torch.cat([x["input"], fake], 1))
        return {
            "G_GAN": self.gan(pred, True, for_discriminator=False),
            "G_L1": F.l1_loss(fake.float(), x["target"].float()) * self.cfg.lambda_L1,
        }

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        inp = x["input"]
        pred_fake = self.D(torch.cat([inp, fakes[-1].detach()], 1))
        pred_real = self.D(torch.cat([inp, x["target"]], 1))
        return {"D_real": self.gan(pred_real, True) * 0.5, "D_fake": self.gan(pred_fake, False) * 0.5}


@contextmanager
def paper_test_mode(G: nn.Module):
    """Run ``G`` as pix2pix's paper tests it: batch norm with the batch's own statistics and dropout on; running
    statistics and train flags are restored afterwards."""
    layers = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout)]
    saved = {m: (m.training, [b.clone() for b in m.buffers()]) for m in layers}
    for m in layers:
        m.train(True)
    try:
        yield G
    finally:
        for m, (flag, bufs) in saved.items():
            m.train(flag)
            for b, old in zip(m.buffers(), bufs):
                b.copy_(old)


def _preset(netG: str, crop: int, **model) -> dict:
    return {
        "family": "pix2pix",
        "data": {"label_nc": 0, "input_nc": 3, "crop_size": crop},
        "model": {"netG": netG, **model},
    }


PRESETS: dict[str, dict] = {
    "unet_256": _preset("unet", 256, num_downs=8),
    "unet_128": _preset("unet", 128, num_downs=7),
    "resnet_9blocks": _preset("resnet", 256, n_blocks=9),
    "resnet_6blocks": _preset("resnet", 256, n_blocks=6),
}
