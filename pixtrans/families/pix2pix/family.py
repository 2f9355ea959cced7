"""pix2pix (Isola et al. 2017): U-Net or ResNet generator, conditional PatchGAN, GAN + lambda * L1.

The networks reproduce junyanz/pytorch-CycleGAN-and-pix2pix layer for layer, so official ``latest_net_G.pth`` /
``latest_net_D.pth`` state dicts load by name (``UnetGenerator``: ``model.model.1.model.3...``; ``ResnetGenerator``:
``model.<i>``, blocks ``model.<i>.conv_block.<j>``). Parameter counts match too (unet_256 3->3: 54,413,955).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Literal

import torch
from pydantic import model_validator
from torch import Tensor, nn

from ...config import DataConfig
from ...layers.blocks import InitKind, NormKind, init_weights
from ...layers.discriminators import NLayerDiscriminator, PixelDiscriminator
from ...losses import GANLoss, ReconstructionConfig, reconstruction_loss
from ..base import Translation, TranslationModel
from .networks import ResnetGenerator, UnetGenerator

# the generator names of the pix2pix paper / official --netG: (netG, the size key, its value)
PAPER_NETG = {
    "unet_128": ("unet", "num_downs", 7),
    "unet_256": ("unet", "num_downs", 8),
    "resnet_6blocks": ("resnet", "n_blocks", 6),
    "resnet_9blocks": ("resnet", "n_blocks", 9),
}


class Pix2PixConfig(ReconstructionConfig):
    """pix2pix model options (defaults: official pix2pix, i.e. unet_256 + 70x70 PatchGAN, vanilla GAN, L1 x100).

    ``netG`` also takes the official names ``unet_128`` / ``unet_256`` (= ``unet`` with ``num_downs`` 7 / 8) and
    ``resnet_6blocks`` / ``resnet_9blocks`` (= ``resnet`` with ``n_blocks`` 6 / 9). The reconstruction term is
    the paper's L1 (``lambda_L1`` 100); ``lambda_ssim`` and ``rec_scales`` add to it as in the other families."""

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
    lambda_L1: float | None = 100.0  # None = 10, as the other families without VGG
    lambda_ssim: float | None = 0.0  # None = 10, as the other families without VGG
    init_type: InitKind = "normal"
    init_gain: float = 0.02
    # False = the paper's test protocol (official test.py without --eval): batch norm with the test image's own
    # statistics and dropout on, so outputs vary per call. translate/test only; export and bench use eval mode.
    eval_mode: bool = True

    @model_validator(mode="before")
    @classmethod
    def _paper_netg(cls, raw):
        if not isinstance(raw, dict) or raw.get("netG") not in PAPER_NETG:
            return raw
        raw = dict(raw)
        name = raw["netG"]
        net, key, value = PAPER_NETG[name]
        if key in raw and raw[key] != value:
            raise ValueError(f"netG {name} means {key} {value}, but {key} is {raw[key]}; give one of them")
        raw["netG"], raw[key] = net, value
        return raw

    @model_validator(mode="after")
    def _check(self):
        if self.netG == "unet" and self.num_downs < 5:
            raise ValueError("num_downs must be >= 5 for the U-Net (8 = unet_256, 7 = unet_128)")
        if self.n_blocks < 0:
            raise ValueError("n_blocks must be >= 0")
        if self.ngf < 1 or self.ndf < 1 or self.n_layers_D < 1:
            raise ValueError("ngf, ndf and n_layers_D must be >= 1")
        return self


class Pix2Pix(TranslationModel):
    """The pix2pix family: ``G`` maps the input to the photo, ``D`` judges (input, photo) pairs."""

    family = "pix2pix"
    Config = Pix2PixConfig
    shares_d_pass = True  # one D pass serves G's and D's losses (g_first)

    def __init__(self, cfg: Pix2PixConfig, data: DataConfig, inference: bool = False):
        super().__init__(cfg, data, inference)
        in_ch, out_ch = self.in_channels, data.output_nc
        if cfg.netG == "unet":
            self.G = UnetGenerator(in_ch, out_ch, cfg.num_downs, cfg.ngf, cfg.norm, cfg.dropout)
        else:
            self.G = ResnetGenerator(in_ch, out_ch, cfg.ngf, cfg.norm, cfg.dropout, cfg.n_blocks, cfg.padding)
        init_weights(self.G, cfg.init_type, cfg.init_gain)
        if inference:
            return
        if cfg.netD == "pixel":
            self.D = PixelDiscriminator(in_ch + out_ch, cfg.ndf, cfg.norm)
        else:
            n_layers = 3 if cfg.netD == "basic" else cfg.n_layers_D
            self.D = NLayerDiscriminator(in_ch + out_ch, cfg.ndf, n_layers, cfg.norm)
        init_weights(self.D, cfg.init_type, cfg.init_gain)
        self.gan = GANLoss(cfg.gan_mode)

    @property
    def size_multiple(self) -> int:
        return 2**self.cfg.num_downs if self.cfg.netG == "unet" else 4

    @property
    def min_size(self) -> int:
        """The U-Net's innermost 1x1 map has no norm, so one multiple is enough; the ResNet needs the default."""
        return self.size_multiple if self.cfg.netG == "unet" else 2 * self.size_multiple

    def generate(self, x: dict) -> list[Tensor]:
        return [self.G(x["input"])]

    def use_paper_test(self) -> None:
        """The official test.py without --eval: each image's own BN statistics, dropout on."""
        self.cfg.eval_mode = False

    @torch.no_grad()
    def translate(self, x: dict, style: dict | None = None) -> Translation:
        if self.training or self.cfg.eval_mode:
            return super().translate(x, style)
        with paper_test_mode(self.G):
            return super().translate(x, style)

    @property
    def runtime_unsupported(self) -> str:
        if self.cfg.eval_mode:
            return ""
        return "the paper's test protocol (per-image batch-norm statistics, dropout on) runs only on --runtime torch"

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        return self._g_terms(x, fakes[-1], self.D(torch.cat([x["input"], fakes[-1]], 1)))

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        inp = x["input"]
        pred_fake = self.D(torch.cat([inp, fakes[-1].detach()], 1))
        return self._d_terms(pred_fake, self.D(torch.cat([inp, x["target"]], 1)))

    def gd_losses(self, x: dict, fakes: list[Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        inp, fake = x["input"], fakes[-1]
        pred_fake = self.D(torch.cat([inp, fake], 1))
        pred_real = self.D(torch.cat([inp, x["target"]], 1))
        return self._g_terms(x, fake, pred_fake), self._d_terms(pred_fake, pred_real)

    def _g_terms(self, x: dict, fake: Tensor, pred_fake: Tensor) -> dict[str, Tensor]:
        l1, ss = self.cfg.rec_weights(vgg_on=False)
        rec = reconstruction_loss(fake, x["target"], l1, ss, self.cfg.rec_scales)
        return {"G_GAN": self.gan(pred_fake, True, for_discriminator=False), **rec}

    def _d_terms(self, pred_fake: Tensor, pred_real: Tensor) -> dict[str, Tensor]:
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
