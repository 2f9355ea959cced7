"""The interface every model family implements, so one trainer, tester, translator and server serve them all.

A family is an ``nn.Module`` holding its networks as attributes (``G`` always; ``D``, ``E``... as it needs) and
four pieces of behaviour:

- :meth:`prepare` turns a dataset batch into tensors on the model's device (one-hot labels, boundary maps);
- :meth:`generate` runs the generator for training and returns a list of images, coarse to fine (one for most
  families, one per scale for MSG U-Net); the last is full resolution;
- :meth:`g_losses` / :meth:`d_losses` return named, already weighted loss terms; the trainer sums them;
- :meth:`translate` is inference: full-resolution image plus the style that was used (so it can be reproduced).

The trainer builds one Adam optimizer per entry of :meth:`optim_groups`; entries named in ``d_optimizers`` step
after the discriminator loss, all others after the generator loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..config import DataConfig, Section, TrainConfig
from ..data.labels import boundary_map, one_hot


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
    d_optimizers: ClassVar[tuple[str, ...]] = ("D",)
    # state_dict prefixes that are not saved (frozen pretrained helpers such as the VGG19 of the perceptual loss)
    transient_prefixes: ClassVar[tuple[str, ...]] = ("vgg_loss.",)

    def __init__(self, cfg: Section, data: DataConfig, inference: bool = False):
        super().__init__()
        self.cfg = cfg
        self.data_cfg = data
        self.inference = inference  # True: generator side only (no discriminator, no losses)
        self.D: nn.Module | None = None

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

    # ---------------------------------------------------------------- data
    def prepare(self, batch: dict) -> dict:
        """Move a batch to the device and build ``x['input']`` (float generator input) from labels/instances.

        Keeps ``target`` (photo in [-1, 1]), ``label`` (int ids) and ``inst`` when present.
        """
        dev = self.device
        x: dict[str, Any] = {}
        src = batch["input"].to(dev, non_blocking=True)
        if self.data_cfg.label_nc > 0:
            x["label"] = src
            parts = [one_hot(src, self.data_cfg.label_nc, self.data_cfg.contain_dontcare)]
            if not self.data_cfg.no_instance:
                inst = batch.get("inst")
                inst = src if inst is None else inst.to(dev, non_blocking=True)
                x["inst"] = inst
                parts.append(boundary_map(inst))
            x["input"] = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        else:
            x["input"] = src.float()
        if "target" in batch:
            x["target"] = batch["target"].to(dev, non_blocking=True)
        return x

    # ---------------------------------------------------------------- training
    def generate(self, x: dict) -> list[Tensor]:
        raise NotImplementedError

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

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
    def translate(self, x: dict, style: dict | None = None) -> Translation:
        """Full-resolution output for a prepared batch ``x``; ``style`` is family specific."""
        outs = self.generate(x)
        return Translation(image=outs[-1], scales=list(outs), style={})

    def eval_style(self) -> dict | None:
        """The fixed style used for metrics (validation, ``pixtrans test``), so that they are reproducible."""
        return None

    def export_module(self) -> nn.Module:
        """A module mapping the prepared input tensor to the output image (for ONNX export and bench)."""
        return _LastOutput(self).eval()

    def checkpoint_state(self) -> dict[str, Tensor]:
        """The state dict that goes into a checkpoint (without transient modules)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.transient_prefixes)}

    def load_checkpoint_state(self, state: dict[str, Tensor]) -> None:
        """Load :meth:`checkpoint_state` output; missing or unexpected keys are an error naming them."""
        missing, unexpected = self.load_state_dict(state, strict=False)
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
