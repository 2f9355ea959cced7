"""Typed, validated experiment configs: YAML in, errors that name the key.

An experiment config has four sections: ``family`` (which model family), ``data`` (:class:`DataConfig`),
``model`` (the family's own config class, registered in :mod:`pixtrans.families`) and ``train``
(:class:`TrainConfig`). Unknown keys and wrong types are :class:`~pixtrans.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import ConfigError
from .registry import model_config_class


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated.

    ``renamed`` maps a section's old key names to the current ones: an old name still loads (existing YAML files and
    checkpoints' ``config.yaml``) with a :class:`DeprecationWarning` naming both; giving both names is an error.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, raw: Any):
        old = [key for key in cls.renamed if isinstance(raw, dict) and key in raw]
        if not old:
            return raw
        raw = dict(raw)
        for key in old:
            new = cls.renamed[key]
            if new in raw:
                raise ValueError(f"{key!r} is the old name of {new!r}; give only {new!r}")
            raw[new] = raw.pop(key)
            _deprecated(f"{cls.__name__}: {key!r} is renamed {new!r}; the old name still loads but will be removed")
        return raw


def _deprecated(message: str) -> None:
    """Warn with one line on stderr. Config keys come from YAML, not Python, so the DeprecationWarning is shown
    even though the default filters hide it outside ``__main__``, unless filters were chosen (``-W``)."""
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("always", DeprecationWarning)
        warnings.warn_explicit(message, DeprecationWarning, "pixtrans.config", 0)


Layout = Literal["synth", "pix2pixhd", "cityscapes", "coco", "ade20k", "custom", "aligned", "paired"]


class DataConfig(Section):
    """Where the data is and how it is read and augmented."""

    root: str = ""
    layout: Layout = "synth"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    label_nc: int = 0  # number of label classes; 0 means the input is an image
    input_nc: int = 3  # channels of an image input (label_nc == 0)
    output_nc: int = 3
    contain_dontcare: bool = False  # label 255 becomes an extra class channel (SPADE convention)
    no_instance: bool = True  # ignore instance maps (no boundary channel)
    preprocess: Literal["resize_and_crop", "scale_width", "scale_width_and_crop", "crop", "none"] = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    color_jitter: float = 0.0  # probability of colour jitter on the photo (pix2pix re-implementation report: 0.5)
    batch_size: int = 1
    num_workers: int = 0
    on_error: Literal["raise", "skip"] = "raise"  # bad files: stop with a clear error, or skip and count
    max_items: int = 0  # 0 = all
    train_split: str = "train"
    test_split: str = "test"

    @model_validator(mode="after")
    def _check(self):
        if self.label_nc < 0 or self.input_nc < 1 or self.output_nc < 1:
            raise ValueError("label_nc must be >= 0 and input_nc/output_nc >= 1")
        if self.load_size < 1 or self.crop_size < 1 or self.batch_size < 1:
            raise ValueError("load_size, crop_size and batch_size must be positive")
        if not 0.0 <= self.color_jitter <= 1.0:
            raise ValueError("color_jitter is a probability in [0, 1]")
        return self

    @property
    def semantic_nc(self) -> int:
        """Channels of the generator input built from this data (one-hot labels [+ dontcare] [+ boundary])."""
        if self.label_nc == 0:
            return self.input_nc
        return self.label_nc + int(self.contain_dontcare) + int(not self.no_instance)


class TrainConfig(Section):
    """The optimisation loop, shared by every family."""

    steps: int = 1000
    lr: float = 2e-4  # generator (and encoder) learning rate
    lr_D: float | None = None  # None = same as lr (TTUR sets it apart)
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: Literal["constant", "linear", "step", "plateau"] = "linear"
    lr_decay_start: float = 0.5  # linear: fraction of steps after which the lr decays linearly to 0
    lr_step_epochs: int = 20  # step: multiply by lr_gamma every this many epochs (pix2pix re-implementation report)
    lr_gamma: float = 0.1
    amp: Literal["off", "bf16", "fp16"] = "off"
    ema: float = 0.0  # EMA decay of G (0 = off, e.g. 0.999)
    grad_clip: float = 0.0  # 0 = off
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 10
    sample_every: int = 100
    save_every: int = 500
    val_every: int = 0  # 0 = off; otherwise validation metrics on up to val_items test items
    val_items: int = 8
    keep_checkpoints: int = 2
    tensorboard: bool = False
    init_from: str = ""  # checkpoint whose weights initialise the model (e.g. pix2pixHD stage 2 from stage 1)
    progress: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.steps < 0:
            raise ValueError("steps must be >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema is a decay in [0, 1)")
        return self


class ExperimentConfig(Section):
    """A whole experiment; ``model`` holds the family's own config section."""

    family: str
    name: str = ""
    data: DataConfig = DataConfig()
    model: Any = None
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _family_model(cls, raw: Any):

        if isinstance(raw, dict):
            raw = dict(raw)
            family = raw.get("family")
            if family is None:
                raise ValueError("the config needs a 'family' key (pix2pix, pix2pixhd, spade or msg_unet)")
            model_cls = model_config_class(family)
            model = raw.get("model") or {}
            if model is not None and not isinstance(model, model_cls):
                raw["model"] = model_cls.model_validate(model)
        return raw

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "name": self.name,
            "data": self.data.model_dump(),
            "model": self.model.model_dump(),
            "train": self.train.model_dump(),
        }


def _error_lines(err: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        loc = ".".join([prefix] * bool(prefix) + [str(p) for p in e["loc"] if not str(p).startswith("function-")])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the config reference in the README)"
        lines.append(f"  {loc or '(top)'}: {msg}")
    return lines


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``16`` -> int, ``true`` -> bool, ``a`` -> str)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Apply ``key.sub=value`` overrides to a raw config dict (in place; returns it)."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.steps=100")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {key}: {p!r} is not a section")
            node = nxt
        node[parts[-1]] = parse_value(value)
    return raw


def config_from_dict(raw: dict, source: str = "") -> ExperimentConfig:
    """Validate a raw dict into an :class:`ExperimentConfig` (errors name the key)."""

    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping")
    if "family" not in raw:
        raise ConfigError(f"invalid config {source}: needs a 'family' key (pix2pix, pix2pixhd, spade or msg_unet)")
    lines: list[str] = []
    raw = dict(raw)
    try:
        raw["model"] = model_config_class(raw["family"]).model_validate(raw.get("model") or {})
    except ValidationError as err:
        lines += _error_lines(err, "model")
    try:
        if not lines:
            return ExperimentConfig.model_validate(raw)
        ExperimentConfig.model_validate({**raw, "model": None})
    except ValidationError as err:
        lines += [ln for ln in _error_lines(err) if not ln.strip().startswith("model")]
    except (ValueError, KeyError) as err:
        lines.append(f"  {err}")
    raise ConfigError(f"invalid config {source}:\n" + "\n".join(lines))


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides and validate.

    ``configs/NAME.yaml``, ``NAME.yaml`` or ``NAME`` that is not on disk is the config shipped in the package."""
    path = Path(path)
    shipped = Path(__file__).parent / "configs"
    if not path.is_file() and path.parent in (Path(), Path("configs")):
        packaged = shipped / (path.name if path.suffix else f"{path.name}.yaml")
        path = packaged if packaged.is_file() else path
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
        raise ConfigError(f"config file {path} not found (shipped configs, usable by name: {names})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return config_from_dict(apply_overrides(raw, overrides), str(path))


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
