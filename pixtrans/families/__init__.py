"""Model families: one package per family (``networks``, ``family``, ``official``, ``presets``), registered in
:mod:`pixtrans.registry`; :mod:`.base` is the interface they implement, capabilities included."""

from __future__ import annotations

from ..registry import FAMILIES, family_class, model_config_class, presets

__all__ = ["FAMILIES", "build_model", "family_class", "model_config_class", "preset_model", "presets"]


def build_model(cfg, inference: bool = False):
    """Build the family model of an :class:`~pixtrans.config.ExperimentConfig`.

    ``inference=True`` builds only what translation needs (generator, plus the style encoder where the family has
    one): no discriminator, no losses.
    """
    return family_class(cfg.family)(cfg.model, cfg.data, inference=inference)


def preset_model(name: str, overrides: list[str] | None = None, inference: bool = False):
    """Build the model of preset ``name`` (see :func:`presets`) with ``key=value`` overrides (``--set``)."""
    import json

    from ..config import apply_overrides, config_from_dict

    raw = json.loads(json.dumps(presets()[name]))  # a deep copy: overrides never touch the preset table
    raw.setdefault("data", {})
    apply_overrides(raw, overrides)
    return build_model(config_from_dict(raw, f"preset {name}"), inference=inference)
