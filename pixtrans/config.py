"""Typed, validated experiment configs: YAML in, errors that name the key.

An experiment config has four sections: ``family`` (which model family), ``data`` (:class:`DataConfig`),
``model`` (the family's own config class, registered in :mod:`pixtrans.families`) and ``train``
(:class:`TrainConfig`). Unknown keys and wrong types are :class:`~pixtrans.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
import typing
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

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)
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
    load_size: int = 286  # left unset (with crop_size): follows the data, see pixtrans.data.datasets
    crop_size: int = 256  # left unset: the data's short side (width for scale_width), nothing upscaled
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
        if self.num_workers < 0 or self.max_items < 0:
            raise ValueError("num_workers and max_items must be >= 0 (0: load in the main process / use all items)")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ValueError(
                f"crop_size ({self.crop_size}) > load_size ({self.load_size}) with preprocess {self.preprocess}: "
                "a crop cannot be larger than the resized image (and test would resize to crop_size); "
                f"set data.load_size >= {self.crop_size} or lower data.crop_size"
            )
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
    fused_adam: bool = True  # Adam's update in one fused kernel per optimizer (CPU, CUDA); false = PyTorch's loop
    # g_first: G's step, then D's on the same fakes (official pix2pixHD / SPADE order); d_first: D's step, then G's
    # through the updated D (official pix2pix order)
    update_order: Literal["g_first", "d_first"] = "g_first"
    # g_first: G's and D's losses from one D pass over the fakes and reals instead of a pass per loss
    # (pix2pix 3 -> 2 D forwards per step, pix2pixHD / MSG U-Net 4 -> 2); same losses and gradients, only D's
    # BatchNorm running statistics (never used) see fewer updates. SPADE keeps a pass per loss (spectral norm)
    shared_d_pass: bool = True
    channels_last: bool = False  # NHWC memory format for the networks (slower on CPU here; for GPU tensor cores)
    # convolutions at inputs up to ~16x16 as matrix multiplies on CPU (U-Net / ResNet inner levels, where oneDNN
    # spends its time reordering weights); the same sums in another order (max abs ~5e-6)
    gemm_small_convs: bool = True
    compile: bool = False  # torch.compile of G and D (minutes of compiling first; CPU needs a C++ compiler)
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
        if self.lr <= 0 or (self.lr_D is not None and self.lr_D <= 0):
            raise ValueError(f"lr and lr_D must be > 0 (lr={self.lr}, lr_D={self.lr_D}); nothing would be learned")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise ValueError(f"beta1 and beta2 are Adam decays in [0, 1) (beta1={self.beta1}, beta2={self.beta2})")
        if not 0.0 <= self.lr_decay_start <= 1.0 or self.lr_gamma <= 0 or self.lr_step_epochs < 1:
            raise ValueError("lr_decay_start must be in [0, 1], lr_gamma > 0 and lr_step_epochs >= 1")
        counts = ("log_every", "sample_every", "save_every", "val_every", "grad_clip")
        bad = [f"{k}={getattr(self, k)}" for k in counts if getattr(self, k) < 0]
        if bad:
            raise ValueError(f"{', '.join(bad)}: must be >= 0 (0 turns it off)")
        if self.val_items < 1 or self.keep_checkpoints < 1:
            raise ValueError("val_items and keep_checkpoints must be >= 1")
        if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", self.device):
            raise ValueError(f"device {self.device!r} is not one of auto, cpu, cuda, cuda:N, mps, xpu, xpu:N")
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


def _section_at(root: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    """The config class of the section at ``path`` below ``root`` (None when it is not a section)."""
    cls = root
    for name in path:
        field = cls.model_fields.get(name)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def _did_you_mean(key: str, section: type[BaseModel] | None) -> str:
    if section is None:
        return ""
    names = [*section.model_fields, *getattr(section, "renamed", {})]
    close = difflib.get_close_matches(key, names, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _error_lines(err: ValidationError, prefix: str = "", root: type[BaseModel] | None = None) -> list[str]:
    lines = []
    for e in err.errors():
        parts = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
        loc = ".".join([prefix] * bool(prefix) + parts)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            hint = _did_you_mean(parts[-1], _section_at(root, parts[:-1])) if root is not None and parts else ""
            msg = f"unknown key{hint} (every key is listed in docs/CONFIG.md, the config reference)"
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
    if not isinstance(raw.get("family", ""), str):
        raise ConfigError(f"invalid config {source}: family: must be a name (pix2pix, pix2pixhd, spade or msg_unet)")
    if "family" not in raw:
        raise ConfigError(f"invalid config {source}: needs a 'family' key (pix2pix, pix2pixhd, spade or msg_unet)")
    lines: list[str] = []
    raw = dict(raw)
    try:
        model_cls = model_config_class(raw["family"])
        raw["model"] = model_cls.model_validate(raw.get("model") or {})
    except ValidationError as err:
        lines += _error_lines(err, "model", model_cls)
    try:
        if not lines:
            return ExperimentConfig.model_validate(raw)
        ExperimentConfig.model_validate({**raw, "model": None})
    except ValidationError as err:
        lines += [ln for ln in _error_lines(err, root=ExperimentConfig) if not ln.strip().startswith("model")]
    except (ValueError, KeyError) as err:
        lines.append(f"  {err}")
    if len(lines) == 1:  # one mistake, one line
        raise ConfigError(f"invalid config {source}: {lines[0].strip()}")
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
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {what}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err}); it must be a UTF-8 YAML file") from None
    return config_from_dict(apply_overrides(raw, overrides), str(path))


# Keys that may differ from the checkpoint's config on ``--resume`` (the new value is used and recorded); any other
# difference is refused, because the restored optimizer, scheduler and data-order state were made with the old one.
RESUME_MAY_CHANGE = frozenset(
    {"name", "data.root", "data.num_workers", "data.on_error"}
    | {f"train.{k}" for k in ("steps", "device", "log_every", "sample_every", "save_every", "val_every", "val_items")}
    | {f"train.{k}" for k in ("keep_checkpoints", "tensorboard", "progress", "compile", "fused_adam", "channels_last")}
    | {"train.gemm_small_convs", "train.shared_d_pass"}
)


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the ``# comment`` after it in the class source (base classes first, overridden by subclasses)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (BaseModel, Section, object) or not issubclass(klass, BaseModel):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^    (\w+): [^\n]*?  # ([^\n]*)$", source, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


def _section_table(cls: type[BaseModel], prefix: str) -> list[str]:
    doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
    rows = [doc, "", "| key | type | default | may change on `--resume` | meaning |", "|---|---|---|---|---|"]
    comments = _field_comments(cls)
    for name, field in cls.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel) or name == "model":
            continue
        choices = typing.get_args(ann) if typing.get_origin(ann) is Literal else ()
        kind = " / ".join(map(str, choices)) if choices else getattr(ann, "__name__", None) or str(ann)
        kind = kind.replace("typing.", "").replace("|", "\\|")
        default = "(required)" if field.is_required() else repr(field.default)
        change = "yes" if f"{prefix}{name}" in RESUME_MAY_CHANGE else "no"
        meaning = comments.get(name, "").replace("|", "/")
        rows.append(f"| `{prefix}{name}` | {kind} | `{default}` | {change} | {meaning} |")
    renamed = getattr(cls, "renamed", {})
    if renamed:
        old = ", ".join(f"`{prefix}{o}` → `{prefix}{n}`" for o, n in renamed.items())
        rows += ["", f"Old names that still load (with a deprecation warning): {old}."]
    return rows + [""]


def config_reference() -> str:
    """The config reference (``docs/CONFIG.md``), generated from the typed config models; ``pixtrans config-reference``
    prints it and a test keeps the file equal to it."""
    from .registry import FAMILIES

    lines = [
        "# Config reference",
        "",
        "Generated from the typed config models by `pixtrans config-reference > docs/CONFIG.md` (a test checks that",
        "this file is current). A config has the sections below; unknown keys, wrong types and invalid values are",
        "errors that name the key. Any key can be overridden on the command line: `--set train.lr=1e-4`.",
        "",
        "`--resume` continues a run exactly; only keys marked *yes* in the resume column may differ from the run's",
        "`config.yaml` (the new value is used and recorded). Changing any other key is refused: the restored",
        "optimizer, schedule and data order were made with the old value. Start a new run for those (for example",
        "with `train.init_from=RUN` to start from its weights).",
        "",
        "## Top level",
        "",
        *_section_table(ExperimentConfig, ""),
        "## `data`",
        "",
        *_section_table(DataConfig, "data."),
        "## `train`",
        "",
        *_section_table(TrainConfig, "train."),
    ]
    for family in FAMILIES:
        lines += [f"## `model` for `family: {family}`", "", *_section_table(model_config_class(family), "model.")]
    return "\n".join(lines).rstrip() + "\n"


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
