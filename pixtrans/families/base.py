"""The interface every model family implements, so one trainer, tester, translator and server serve them all.

A family is an ``nn.Module`` holding its networks as attributes (``G`` always; ``D``, ``E``... as it needs) and
four pieces of behaviour:

- :meth:`prepare` turns a dataset batch into tensors on the model's device (one-hot labels, boundary maps);
- :meth:`generate` runs the generator for training and returns a list of images, coarse to fine (one for most
  families, one per scale for MSG U-Net); the last is full resolution;
- :meth:`g_losses` / :meth:`d_losses` return named, already weighted loss terms; the trainer sums them;
- :meth:`translate` is inference: full-resolution image plus the style that was used (so it can be reproduced).

Everything outside a family package asks it what it can do instead of checking its name (the capability API):
:meth:`style_schema` (which styles exist, typed), :meth:`parse_style` (a typed :class:`Style` from JSON),
:meth:`encode_reference` (the style of a photo), :meth:`feature_map` (per-instance features for K-means),
:meth:`inference_module`, :meth:`export_inputs`, :meth:`export_size` and :attr:`export_dynamic` (export and bench).
Built with ``inference=True`` a family holds only what translation needs: no discriminator, no losses.

The trainer builds one Adam optimizer per entry of :meth:`optim_groups`; entries named in ``d_optimizers`` step
after the discriminator loss, all others after the generator loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor, nn

from ..config import DataConfig, Section, TrainConfig
from ..data.labels import boundary_map, one_hot
from ..errors import ConfigError


def round_up(n: int, m: int) -> int:
    """The smallest positive multiple of ``m`` that is >= ``n``."""
    return max(m, math.ceil(n / m) * m)


class Style(BaseModel):
    """A family's style options (subclasses add typed fields); unknown keys are errors naming the key."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class NoStyle(Style):
    """Deterministic families take no style."""


class StyleSchema(BaseModel):
    """What styles a model takes, for clients (the studio) and the translator.

    ``kind``: ``none`` (deterministic), ``clusters`` (K-means feature clusters per class), ``features`` (per-class
    feature vectors, no clusters computed yet), ``seed`` (a random style from a seed); ``keys``: the JSON keys a
    client may send; ``clusters``: class id -> number of clusters; ``reference``: a photo's style can be copied;
    ``clusterable``: ``pixtrans features`` can compute clusters for it.
    """

    kind: Literal["none", "clusters", "features", "seed"] = "none"
    keys: tuple[str, ...] = ()
    clusters: dict[str, int] = {}
    seed: bool = False
    reference: bool = False
    clusterable: bool = False


@dataclass
class OptimGroup:
    """Parameters of one optimizer with their learning rate and Adam betas."""

    params: list
    lr: float
    betas: tuple[float, float]


@dataclass
class Translation:
    """Result of :meth:`TranslationModel.translate`."""

    image: Tensor  # (B, 3, H, W) in [-1, 1], full resolution
    scales: list[Tensor] = field(default_factory=list)  # every output, coarse to fine (MSG U-Net)
    style: dict = field(default_factory=dict)  # what reproduces this output (cluster ids, seed, ...)


class TranslationModel(nn.Module):
    """Base class of the four families. Subclasses set ``family``, ``Config`` and build their networks."""

    family: ClassVar[str] = ""
    Config: ClassVar[type[Section]] = Section
    Style: ClassVar[type[Style]] = NoStyle
    d_optimizers: ClassVar[tuple[str, ...]] = ("D",)
    multi_scale: ClassVar[bool] = False  # an output per pyramid scale (the resolution ablation, the gradient study)
    # state_dict prefixes that are not saved (frozen pretrained helpers such as the VGG19 of the perceptual loss)
    transient_prefixes: ClassVar[tuple[str, ...]] = ("vgg_loss.",)

    def __init__(self, cfg: Section, data: DataConfig, inference: bool = False):
        super().__init__()
        self.cfg = cfg
        self.data_cfg = data
        self.inference = inference  # True: generator side only (no discriminator, no losses)
        self.D: nn.Module | None = None
        self.vgg_loss: nn.Module | None = None  # built on first use: inference and bench need no VGG weights

    # ---------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def in_channels(self) -> int:
        """Channels of the generator input (one-hot labels [+ dontcare] [+ boundary], or image channels)."""
        return self.data_cfg.semantic_nc

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (the translator pads to it)."""
        return 1

    @property
    def min_size(self) -> int:
        """The smallest height and width the network takes (the translator pads smaller inputs up to it and crops
        back). Default: two size multiples, so the deepest feature map is at least 2x2 (instance norm needs more
        than one value, reflection padding more than its width)."""
        return 2 * self.size_multiple

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) an input of ``height`` x ``width`` is padded to: at least :attr:`min_size`, then a multiple of
        :attr:`size_multiple`."""
        m, lo = self.size_multiple, self.min_size
        return round_up(max(height, lo), m), round_up(max(width, lo), m)

    # ---------------------------------------------------------------- data
    def prepare(self, batch: dict, encode: bool = True) -> dict:
        """Move a batch to the device and build ``x['input']`` (float generator input) from labels/instances.

        Keeps ``target`` (photo in [-1, 1]), ``label`` (int ids) and ``inst`` when present. ``encode=False``: no
        ``input`` for label maps (tiled inference encodes it per tile with :meth:`encode_input`).
        """
        dev = self.device
        x: dict[str, Any] = {}
        src = batch["input"].to(dev, non_blocking=True)
        if self.data_cfg.label_nc > 0:
            x["label"] = src
            if not self.data_cfg.no_instance:
                inst = batch.get("inst")
                x["inst"] = src if inst is None else inst.to(dev, non_blocking=True)
            if encode:
                x["input"] = self.encode_input(x)
        else:
            x["input"] = src.float()
        if "target" in batch:
            x["target"] = batch["target"].to(dev, non_blocking=True)
        return x

    def encode_input(self, x: dict) -> Tensor:
        """The generator input of label maps: one-hot ``x['label']`` [+ don't care] [+ boundaries of ``x['inst']``].
        Each output pixel depends on the ids within :attr:`input_halo` pixels of it (tiles encode with that halo)."""
        parts = [one_hot(x["label"], self.data_cfg.label_nc, self.data_cfg.contain_dontcare)]
        if not self.data_cfg.no_instance:
            parts.append(boundary_map(x["inst"]))
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    @property
    def input_halo(self) -> int:
        """How far (pixels) :meth:`encode_input` looks around a pixel: 1 with instance boundary maps, else 0."""
        return int(self.data_cfg.label_nc > 0 and not self.data_cfg.no_instance)

    # ---------------------------------------------------------------- training
    def generate(self, x: dict) -> list[Tensor]:
        raise NotImplementedError

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    #: whether :meth:`gd_losses` gives the step of separate passes (not with spectral norm: its power iteration
    #: runs once per pass)
    shares_d_pass: bool = False

    def gd_losses(self, x: dict, fakes: list[Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``g_losses`` and ``d_losses`` (update order g_first) from one discriminator pass over the fakes (not
        detached) and the reals; the trainer sends each loss's gradient only to its own networks."""
        raise NotImplementedError(f"{self.family} needs a discriminator pass per loss")

    def perceptual_loss(self, **kw) -> nn.Module:
        """The VGG19 perceptual loss (:class:`~pixtrans.layers.vgg.VGGLoss`, ``kw`` to it) with the weights named by
        ``model.vgg_weights``, built on first use (missing weights: an error that says how to provide them)."""
        if self.vgg_loss is None:
            from ..layers.vgg import VGGLoss

            self.vgg_loss = VGGLoss(self.cfg.vgg_weights or None, **kw).to(self.device)
        return self.vgg_loss

    def optim_groups(self, train: TrainConfig) -> dict[str, OptimGroup]:
        """Default: Adam on G (lr) and D (lr_D or lr) with the configured betas."""
        betas = (train.beta1, train.beta2)
        groups = {"G": OptimGroup(list(self.G.parameters()), train.lr, betas)}
        if getattr(self, "D", None) is not None:
            groups["D"] = OptimGroup(list(self.D.parameters()), train.lr_D or train.lr, betas)
        return groups

    def on_step(self, step: int, epoch: int) -> None:
        """Called before every training step (progressive schedules, freezing)."""

    def discriminators(self) -> list[nn.Module]:
        """Modules whose gradients are switched off during the generator step."""
        d = getattr(self, "D", None)
        return [d] if d is not None else []

    def generators(self) -> nn.Module:
        """The module an EMA copy tracks (default ``G``)."""
        return self.G

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def translate(self, x: dict, style: Style | dict | None = None) -> Translation:
        """Full-resolution output for a prepared batch ``x``; ``style`` as :meth:`parse_style` takes it."""
        self.parse_style(style)
        outs = self.generate(x)
        return Translation(image=outs[-1], scales=list(outs), style={})

    def eval_style(self) -> dict | None:
        """The fixed style used for metrics (validation, ``pixtrans test``), so that they are reproducible."""
        return None

    # ---------------------------------------------------------------- capabilities
    def style_schema(self) -> StyleSchema:
        """What styles this model takes (default: none, the output is deterministic)."""
        return StyleSchema()

    def parse_style(self, style: Style | dict | None) -> Style:
        """A typed :class:`Style` from a dict (JSON); unknown keys or wrong types are a :class:`ConfigError`."""
        if isinstance(style, self.Style):
            return style
        if style is not None and not isinstance(style, dict):
            raise ConfigError(f"style: expected an object (dict), got {type(style).__name__}")
        try:
            return self.Style.model_validate(style or {})
        except ValidationError as err:
            keys = self.style_schema().keys
            takes = ", ".join(keys) if keys else "no style (its output is deterministic)"
            lines = []
            for e in err.errors():
                loc = ".".join(str(p) for p in e["loc"]) or "style"
                msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
                lines.append(f"{loc}: {msg}")
            raise ConfigError(f"style: {'; '.join(lines)}; this {self.family} model takes {takes}") from None

    def use_paper_test(self) -> None:
        """Switch inference to the paper's test protocol where the family has one (``--paper-test``)."""
        raise ConfigError(f"--paper-test is pix2pix's test protocol; this is a {self.family} model")

    def encode_reference(self, photo: Tensor, label: Tensor | None = None, inst: Tensor | None = None) -> dict:
        """The style (a dict :meth:`parse_style` accepts) that copies a reference photo (1, 3, H, W) in [-1, 1];
        ``label``/``inst`` (1, 1, H, W) give the photo's layout where the family needs it."""
        raise ConfigError(f"this {self.family} model takes no style, so it cannot copy a reference photo")

    def feature_map(self, x: dict) -> tuple[Tensor, Tensor]:
        """(raw per-pixel style features (B, C, H, W), instance ids (B, 1, H, W)) of ``x['target']``, for K-means
        clustering (``pixtrans features``); only where :meth:`style_schema` says ``clusterable``."""
        raise ConfigError(f"this {self.family} model has no instance features to cluster")

    def set_clusters(self, clusters: dict[int, Tensor]) -> None:
        """Store K-means centres per class (``pixtrans features``); they go into the checkpoint via :meth:`meta`."""
        raise ConfigError(f"this {self.family} model has no instance features to cluster")

    def inference_module(self) -> nn.Module:
        """A module mapping :meth:`export_inputs` to the output image (ONNX export)."""
        return _LastOutput(self).eval()

    def generator_inputs(self, x: dict, style: Style | dict | None = None) -> tuple[dict[str, Tensor], dict]:
        """(the named tensors :meth:`generator_module` takes for the prepared batch ``x`` under ``style``, the style
        that reproduces the output). All style work (painting features, drawing z, encoding a reference photo)
        happens here in torch, so a runtime (ONNX Runtime, OpenVINO) runs only the plain network."""
        self.parse_style(style)
        return {"input": x["input"]}, {}

    def generator_module(self) -> nn.Module:
        """What the translator runs on every runtime (and ``pixtrans bench`` times): :meth:`generator_inputs`'
        tensors, positionally in their order -> a tuple of output images, coarse to fine (last = full resolution).
        Its outputs match :meth:`translate` for the same style (max abs <= 1e-3 in fp32). Batch items are
        independent (eval-mode normalisation), so requests can be batched."""
        return _Outputs(self.inference_module()).eval()

    @property
    def runtime_unsupported(self) -> str:
        """Why only the torch reference (:meth:`translate`) can run the model as configured now ('' = any runtime)."""
        return ""

    def example_batch(self, batch: int, height: int, width: int, gen: torch.Generator) -> dict:
        """A prepared batch like a real one (:meth:`prepare` output): blocky label maps with instances, or images in
        [-1, 1]; for export checks, runtime verification and bench."""
        data = self.data_cfg
        if data.label_nc == 0:
            return self.prepare({"input": torch.rand(batch, data.input_nc, height, width, generator=gen) * 2 - 1})
        coarse = (batch, 1, max(1, height // 8), max(1, width // 8))
        ids = torch.randint(0, data.label_nc, coarse, generator=gen)
        if data.contain_dontcare:
            ids[torch.rand(coarse, generator=gen) < 0.05] = 255
        inst = ids * 1000 + torch.randint(0, 3, coarse, generator=gen)
        up = nn.functional.interpolate
        ids = up(ids.float(), size=(height, width), mode="nearest").long()
        inst = up(inst.float(), size=(height, width), mode="nearest").long()
        return self.prepare({"input": ids, "inst": inst})

    def export_inputs(self, batch: int, height: int, width: int, gen: torch.Generator) -> dict[str, Tensor]:
        """Named example inputs of :meth:`inference_module`, like real ones (:meth:`example_batch`)."""
        return {"input": self.example_batch(batch, height, width, gen)["input"].float().cpu()}

    @property
    def aspect_ratio(self) -> float:
        """Width / height of the images the model was made for (1 unless the family records another)."""
        return 1.0

    def export_size(self) -> tuple[int, int]:
        """(W, H) to trace and check an export at: the training crop, rounded up to the size multiple."""
        m = self.size_multiple
        w = round_up(min(self.data_cfg.crop_size, 512), m)
        return w, round_up(round(w / self.aspect_ratio), m)

    @property
    def export_dynamic(self) -> bool:
        """Whether the inference graph works at any (multiple-of) size; False: only at :meth:`export_size`."""
        return True

    def export_notes(self) -> dict:
        """Family-specific notes for an export's sidecar JSON (e.g. how styles enter the graph)."""
        return {}

    def checkpoint_state(self) -> dict[str, Tensor]:
        """The state dict that goes into a checkpoint (without transient modules)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.transient_prefixes)}

    def load_checkpoint_state(self, state: dict[str, Tensor], assign: bool = False) -> None:
        """Load :meth:`checkpoint_state` output; missing or unexpected keys are an error naming them.
        ``assign``: take the tensors themselves (a model built on the meta device gets real storage)."""
        missing, unexpected = self.load_state_dict(state, strict=False, assign=assign)
        missing = [k for k in missing if not k.startswith(self.transient_prefixes)]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")

    def meta(self) -> dict:
        """Family-specific metadata stored in the checkpoint (e.g. feature clusters)."""
        return {}

    def load_meta(self, meta: dict) -> None:
        """Restore what :meth:`meta` stored."""

    def load_init(self, state: dict[str, Tensor]) -> list[str]:
        """Initialise from another checkpoint's weights (``train.init_from``); returns the keys loaded.

        Default: every key whose name and shape match. Families override for stage changes.
        """
        own = self.state_dict()
        take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(take, strict=False)
        return sorted(take)


class _LastOutput(nn.Module):
    """Input tensor -> full-resolution output; owns only the generator (so its parameter count is G's)."""

    def __init__(self, model: TranslationModel):
        super().__init__()
        self.G = model.generators()
        object.__setattr__(self, "model", model)  # not a submodule: D and losses stay out

    def forward(self, inp: Tensor) -> Tensor:
        return self.model.generate({"input": inp})[-1]


class _Outputs(nn.Module):
    """A one-output module as a :meth:`TranslationModel.generator_module` (a tuple of outputs)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return (self.module(*inputs),)
