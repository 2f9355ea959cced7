"""The one place that names the model families: name -> package. Registering a family is one entry here.

A family package exports ``Family`` (a :class:`~pixtrans.families.base.TranslationModel` subclass whose ``Config``
is its typed model section) and ``PRESETS`` (preset name -> raw experiment config). Packages are imported on first
use, so this module sits at the bottom layer (``config`` validates a model section through it) without importing
any family.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from .errors import ConfigError

FAMILIES: dict[str, str] = {
    "pix2pix": "pixtrans.families.pix2pix",
    "pix2pixhd": "pixtrans.families.pix2pixhd",
    "spade": "pixtrans.families.spade",
    "msg_unet": "pixtrans.families.msg_unet",
}


def family_package(family: str) -> ModuleType:
    """The package of a registered family (a :class:`ConfigError` naming the choices otherwise)."""
    if family not in FAMILIES:
        raise ConfigError(f"family: unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return import_module(FAMILIES[family])


def family_class(family: str) -> type:
    return family_package(family).Family


def model_config_class(family: str) -> type:
    return family_class(family).Config


def presets() -> dict[str, dict]:
    """Every preset of every family."""
    out: dict[str, dict] = {}
    for family in FAMILIES:
        out.update(family_package(family).PRESETS)
    return out
