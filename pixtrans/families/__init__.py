"""Model families: one package per family (``networks``, ``family``, ``official``, ``presets``), registered in
:mod:`pixtrans.registry`; :mod:`.base` is the interface they implement, capabilities included."""

from __future__ import annotations

from ..registry import FAMILIES, family_class, model_config_class, presets

__all__ = ["FAMILIES", "build_model", "family_class", "model_config_class", "presets"]


def build_model(cfg, inference: bool = False):
    """Build the family model of an :class:`~pixtrans.config.ExperimentConfig`.

    ``inference=True`` builds only what translation needs (generator, plus the style encoder where the family has
    one): no discriminator, no losses.
    """
    return family_class(cfg.family)(cfg.model, cfg.data, inference=inference)
