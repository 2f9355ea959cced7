"""pix2pixHD (Wang et al. 2018): coarse-to-fine generator, multi-scale discriminators, feature encoder styles."""

from __future__ import annotations

from . import official
from .family import Pix2PixHD, Pix2PixHDConfig, Pix2PixHDStyle
from .networks import Encoder, GlobalGenerator, LocalEnhancer, Padding, ResnetBlock
from .presets import PRESETS

Family = Pix2PixHD

__all__ = [
    "Family",
    "official",
    "ResnetBlock",
    "GlobalGenerator",
    "LocalEnhancer",
    "Encoder",
    "Padding",
    "Pix2PixHDConfig",
    "Pix2PixHD",
    "Pix2PixHDStyle",
    "PRESETS",
]
