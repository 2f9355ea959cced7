"""MSG U-Net: multi-scale-gradient U-Net with an output and a discriminator per scale."""

from __future__ import annotations

from .family import FullResolution, MSGUNet, MSGUNetConfig
from .networks import VGG_MIN_SIZE, MSGUNetGenerator, downsample, pyramid
from .presets import PRESETS

Family = MSGUNet

__all__ = [
    "Family",
    "downsample",
    "pyramid",
    "MSGUNetGenerator",
    "VGG_MIN_SIZE",
    "MSGUNetConfig",
    "MSGUNet",
    "FullResolution",
    "PRESETS",
]
