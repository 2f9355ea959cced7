"""Learning-rate policies: constant, linear decay to zero, step decay per epoch (from the pix2pix
re-implementation report), plateau."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from ..config import TrainConfig


def make_scheduler(opt: Optimizer, train: TrainConfig, steps_per_epoch: int) -> LRScheduler | ReduceLROnPlateau:
    """A scheduler stepped once per training step (plateau: once per validation, on PSNR)."""
    total = max(train.steps, 1)
    if train.lr_policy == "constant":
        return LambdaLR(opt, lambda s: 1.0)
    if train.lr_policy == "linear":
        start = int(train.lr_decay_start * total)
        span = max(total - start, 1)
        return LambdaLR(opt, lambda s: 1.0 - max(0, s - start) / span)
    if train.lr_policy == "step":
        every = max(train.lr_step_epochs * max(steps_per_epoch, 1), 1)
        return LambdaLR(opt, lambda s: train.lr_gamma ** (s // every))
    return ReduceLROnPlateau(opt, mode="max", factor=0.2, patience=5, threshold=0.01)


def is_plateau(sched) -> bool:
    return isinstance(sched, ReduceLROnPlateau)
