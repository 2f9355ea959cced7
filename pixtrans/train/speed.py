"""Speed options of a training step (``train.fused_adam``, ``train.gemm_small_convs``, ``train.channels_last``,
``train.compile``).

Measured with ``benchmarks/train_step.py`` (table in benchmarks/README.md): the fused Adam update is the large win
on CPU (the default per-parameter loop makes ~10 passes over 54 M parameters and allocates two temporaries per
tensor); channels_last and torch.compile are off by default because they did not help on CPU.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import ConfigError
from ..layers.gemm_conv import use_gemm_convs
from ..runtime_env import tune_malloc

NETWORKS = ("G", "D")  # what train.compile compiles


def adam_options(t: TrainConfig, device: torch.device) -> dict:
    """Extra ``torch.optim.Adam`` arguments: ``fused=True`` where PyTorch has a fused kernel for the device."""
    return {"fused": True} if t.fused_adam and device.type in ("cpu", "cuda") else {}


def check_compile(device: torch.device) -> None:
    """``train.compile`` on CPU needs a C++ compiler for the generated kernels: a clear error instead of a trace."""
    if device.type != "cpu":
        return
    if not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c):
        raise ConfigError("train.compile: torch.compile on CPU needs a C++ compiler (g++ or clang++); none found")


def check_channels_last(model: nn.Module, device: torch.device) -> None:
    """On CPU, PyTorch's instance-norm backward returns wrong input gradients when the incoming gradient is
    channels_last (found here with torch 2.13: errors as large as the gradient itself, float64 too), so
    ``train.channels_last`` is refused for models with instance norm on CPU."""
    if device.type == "cpu" and any(isinstance(m, nn.modules.instancenorm._InstanceNorm) for m in model.modules()):
        raise ConfigError(
            "train.channels_last: on CPU, PyTorch's instance-norm backward gives wrong gradients for channels_last "
            "tensors, and this model has instance norm; leave it off (it is slower on CPU anyway)"
        )


def prepare_model(model: nn.Module, t: TrainConfig, device: torch.device) -> None:
    """Apply the speed options to a model on its device (in place; parameter names stay unchanged)."""
    if device.type == "cpu":
        tune_malloc()
        if t.gemm_small_convs:
            use_gemm_convs(model)
    if t.channels_last:
        check_channels_last(model, device)
        model.to(memory_format=torch.channels_last)
    if t.compile:
        check_compile(device)
        for name in NETWORKS:
            net = getattr(model, name, None)
            if isinstance(net, nn.Module):
                net.compile()  # in place: state_dict keys keep their names (no "_orig_mod.")
