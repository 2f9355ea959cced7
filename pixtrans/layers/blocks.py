"""Shared building blocks: the norm-layer factory and the official (junyanz / NVIDIA) weight initialisation."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import init
from torch.nn.utils import parametrize

NormKind = Literal["batch", "instance", "none", "sync_batch"]
NORM_KINDS: tuple[str, ...] = ("batch", "instance", "none", "sync_batch")
InitKind = Literal["normal", "xavier", "xavier_uniform", "kaiming", "orthogonal", "none"]
INIT_KINDS: tuple[str, ...] = ("normal", "xavier", "xavier_uniform", "kaiming", "orthogonal", "none")


def _check_norm(kind: str) -> None:
    if kind not in NORM_KINDS:
        raise ValueError(f"norm: unknown normalisation {kind!r}; choose one of {', '.join(NORM_KINDS)}")


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose statistics are synchronised over the process group where torch can: accelerator (CUDA)
    inputs in training under ``torchrun`` (NCCL); the computation is ``nn.SyncBatchNorm``'s.

    Documented fallback: on CPU tensors (gloo, or one process) torch's SyncBatchNorm raises, and DDP refuses CPU
    modules holding one, so there this layer is a plain per-process BatchNorm2d (statistics of the local batch;
    under gloo a one-time warning says so). Same state-dict keys as ``nn.BatchNorm2d``; the one implementation
    behind every ``sync_batch`` norm.
    """

    _warned = False
    _check_non_zero_input_channels = nn.SyncBatchNorm._check_non_zero_input_channels

    def __init__(self, *args, process_group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"SyncBatchNorm2d expects a 4-D (B, C, H, W) input, got {input.dim()}-D")

    def forward(self, input: Tensor) -> Tensor:
        if input.device.type != "cpu":
            return nn.SyncBatchNorm.forward(self, input)
        if self.training and dist.is_available() and dist.is_initialized() and not SyncBatchNorm2d._warned:
            SyncBatchNorm2d._warned = True
            warnings.warn(
                "norm sync_batch on CPU (gloo): BatchNorm statistics are per process; they synchronise on CUDA/NCCL",
                stacklevel=2,
            )
        return super().forward(input)


def norm_layer(kind: NormKind) -> Callable[[int], nn.Module]:
    """A constructor ``channels -> module`` for a 2-D norm layer, as in the official pix2pix code.

    ``batch``: affine BatchNorm with running stats; ``instance``: InstanceNorm without affine or running stats;
    ``none``: identity (kept as a module so ``nn.Sequential`` indices, hence state_dict keys, do not shift);
    ``sync_batch``: :class:`SyncBatchNorm2d` (per-process BatchNorm on CPU, see there).
    """
    _check_norm(kind)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "sync_batch":
        return lambda c: SyncBatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    return lambda c: nn.Identity()


def conv_bias(kind: NormKind) -> bool:
    """Whether a conv followed by this norm needs its own bias (no affine shift after it).

    Matches the official code for ``batch`` (no bias) and ``instance`` (bias). For ``none`` the official code
    drops the bias too (an accident of its type check); we keep it, since nothing else shifts the output.
    """
    _check_norm(kind)
    return kind in ("instance", "none")


def _weight(m: nn.Module):
    """The trainable tensor behind ``m.weight`` (also under spectral norm, old or parametrized)."""
    if hasattr(m, "weight_orig"):
        return m.weight_orig
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


def init_weights(module: nn.Module, kind: InitKind = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv/linear and batch-norm layer in ``module`` like the official code; returns it.

    Conv/Linear weights: ``normal`` N(0, gain), ``xavier`` (normal, gain), ``xavier_uniform`` (gain 1, SPADE),
    ``kaiming`` (fan_in), ``orthogonal`` (gain), ``none`` (PyTorch default); biases 0.
    BatchNorm/SyncBatchNorm: weight N(1, gain), bias 0. Other norms keep their defaults.
    """
    if kind not in INIT_KINDS:
        raise ValueError(f"init: unknown initialisation {kind!r}; choose one of {', '.join(INIT_KINDS)}")

    def init_one(m: nn.Module) -> None:
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                init.normal_(m.weight.data, 1.0, gain)
            if m.bias is not None:
                init.constant_(m.bias.data, 0.0)
        elif isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            w = _weight(m).data
            if kind == "normal":
                init.normal_(w, 0.0, gain)
            elif kind == "xavier":
                init.xavier_normal_(w, gain=gain)
            elif kind == "xavier_uniform":
                init.xavier_uniform_(w, gain=1.0)
            elif kind == "kaiming":
                init.kaiming_normal_(w, a=0, mode="fan_in")
            elif kind == "orthogonal":
                init.orthogonal_(w, gain=gain)
            else:
                m.reset_parameters()
            if m.bias is not None:
                init.constant_(m.bias.data, 0.0)

    module.apply(init_one)
    return module


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not) in ``module``."""
    return sum(p.numel() for p in module.parameters())
