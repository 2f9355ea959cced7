"""Model families and presets.

``FAMILIES`` maps a family name to ``module:Class``; each family module also defines ``PRESETS``: preset name ->
raw experiment config (``family``, ``data``, ``model``) used by ``pixtrans bench`` and tests.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import ConfigError

FAMILIES = {
    "pix2pix": "pixtrans.models.pix2pix:Pix2Pix",
    "pix2pixhd": "pixtrans.models.pix2pixhd:Pix2PixHD",
    "spade": "pixtrans.models.spade:SPADE",
    "msg_unet": "pixtrans.models.msg_unet:MSGUNet",
}


def _module(family: str):
    if family not in FAMILIES:
        raise ConfigError(f"family: unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    mod_name, _ = FAMILIES[family].split(":")
    try:
        return import_module(mod_name)
    except ModuleNotFoundError as err:
        if err.name == mod_name:
            raise ConfigError(f"family: {family!r} is not available in this version") from None
        raise


def model_class(family: str):
    return getattr(_module(family), FAMILIES[family].split(":")[1])


def model_config_class(family: str):
    return model_class(family).Config


def build_model(cfg):
    """Build the family model of an :class:`~pixtrans.config.ExperimentConfig`."""
    return model_class(cfg.family)(cfg.model, cfg.data)


def presets() -> dict[str, dict]:
    """Every preset of every available family."""
    out: dict[str, dict] = {}
    for family in FAMILIES:
        try:
            out.update(getattr(_module(family), "PRESETS", {}))
        except ConfigError:
            continue
    return out
