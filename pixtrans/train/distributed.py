"""Multi-process training under ``torchrun``: process group, rank-0 I/O and gradient averaging.

Gradients are averaged with bucketed ``all_reduce`` after each backward pass. This is what DDP does, written out
because a GAN step runs the generator loss *through* a discriminator whose parameters are frozen for that pass, which
``DistributedDataParallel`` wrappers handle badly (unused-parameter errors, a reduction per wrapped module per pass).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

_BUCKET_BYTES = 25 * 2**20


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Start the process group when launched by torchrun; returns (rank, world_size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_module(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if is_distributed():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params: list[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in flat buckets (params without a gradient are skipped on every rank alike)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    grads = [p.grad for p in params if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads + [None]:
        if g is not None:
            bucket.append(g)
            size += g.numel() * g.element_size()
        if bucket and (g is None or size >= _BUCKET_BYTES):
            flat = torch.cat([b.reshape(-1) for b in bucket])
            dist.all_reduce(flat)
            flat /= world
            offset = 0
            for b in bucket:
                b.copy_(flat[offset : offset + b.numel()].view_as(b))
                offset += b.numel()
            bucket, size = [], 0


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (used to stop all ranks together)."""
    if not is_distributed():
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t)
    return bool(t.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
