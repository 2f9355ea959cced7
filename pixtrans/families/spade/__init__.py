"""SPADE (Park et al. 2019): spatially-adaptive normalisation, hinge loss, spectral norm, VAE style encoder."""

from __future__ import annotations

from . import official
from .family import SPADE, SPADEConfig, SPADEStyle
from .networks import NUM_UP, ConvEncoder, DNorm, SPADEGenerator, SPADENLayerDiscriminator, UpLayers, reparameterize
from .official import official_state_dict
from .presets import PRESETS

Family = SPADE

__all__ = [
    "Family",
    "official",
    "SPADEGenerator",
    "ConvEncoder",
    "reparameterize",
    "SPADENLayerDiscriminator",
    "UpLayers",
    "NUM_UP",
    "DNorm",
    "SPADEConfig",
    "SPADEStyle",
    "SPADE",
    "official_state_dict",
    "PRESETS",
]
