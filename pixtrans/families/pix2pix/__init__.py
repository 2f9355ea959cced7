"""pix2pix (Isola et al. 2017): U-Net or ResNet generator, PatchGAN, cGAN + L1."""

from __future__ import annotations

from . import official
from .family import Pix2Pix, Pix2PixConfig, paper_test_mode
from .networks import ResnetBlock, ResnetGenerator, UnetGenerator, UnetSkipConnectionBlock
from .presets import PRESETS

Family = Pix2Pix

__all__ = [
    "Family",
    "official",
    "UnetSkipConnectionBlock",
    "UnetGenerator",
    "ResnetBlock",
    "ResnetGenerator",
    "Pix2PixConfig",
    "Pix2Pix",
    "paper_test_mode",
    "PRESETS",
]
