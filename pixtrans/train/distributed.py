"""Multi-process training under ``torchrun``: process group, DDP wrappers, buffer sync and rank-0 I/O helpers.

Each trained network (G, D, E) gets its own :class:`DDP` wrapper, so its gradients are averaged during ``backward``
(bucketed, overlapped with the backward pass). The trainer puts a wrapper in place only for the pass that trains
that network: in the generator step G (and E) are wrapped while D runs as the plain module with
``requires_grad=False`` (no gradient for D, no reduction for D's wrapper); in the discriminator step only D is
wrapped. Buffers (BatchNorm statistics, spectral-norm vectors) are broadcast from rank 0 once per step
(``forward_sync_buffers=False`` on the wrappers, :func:`broadcast_buffers` after the step), DDP's own semantics at one
collective per step. Every collective runs on the rank's device: CUDA tensors under NCCL, CPU tensors under gloo.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

_DEVICE = torch.device("cpu")


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Start the process group when launched by torchrun (NCCL on CUDA, gloo on CPU); returns (rank, world)."""
    global _DEVICE
    _DEVICE = device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return dist.get_rank(), dist.get_world_size()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class DDP(DistributedDataParallel):
    """``DistributedDataParallel`` that forwards unknown attributes to the wrapped network.

    Families call methods and properties of their networks (``G.global_parameters()``, ``G.size_multiple``), so
    a wrapper in place of ``model.G`` must answer them like the network does.
    """

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def wrap(net: nn.Module | None, device: torch.device) -> nn.Module | None:
    """A DDP wrapper of ``net`` (its trainable parameters at this moment), or ``net`` itself in one process.

    An ``nn.ModuleList`` (MSG U-Net's per-scale discriminators) has no forward: each member is wrapped.
    """
    if net is None or not is_distributed() or not any(p.requires_grad for p in net.parameters()):
        return net
    if isinstance(net, nn.ModuleList):
        return nn.ModuleList(wrap(m, device) for m in net)
    ids = [device] if device.type == "cuda" else None
    return DDP(net, device_ids=ids, forward_sync_buffers=False)


def trainable_signature(net: nn.Module | None) -> tuple[bool, ...]:
    """Which parameters require a gradient; a wrapper is rebuilt when this changes (progressive freezing)."""
    return () if net is None else tuple(p.requires_grad for p in net.parameters())


def _broadcast_flat(tensors: list[torch.Tensor]) -> None:
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        dist.broadcast(flat, src=0)
        offset = 0
        for t in group:
            t.data.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def broadcast_module(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if is_distributed():
        _broadcast_flat(list(module.parameters()) + list(module.buffers()))


def broadcast_buffers(modules: list[nn.Module | None]) -> None:
    """Give every rank rank 0's buffers of ``modules`` (one collective per dtype)."""
    if not is_distributed():
        return
    seen: set[int] = set()
    bufs = []
    for m in modules:
        for b in m.buffers() if m is not None else ():
            if id(b) not in seen:
                seen.add(id(b))
                bufs.append(b)
    if bufs:
        _broadcast_flat(bufs)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (used to stop all ranks together)."""
    if not is_distributed():
        return flag
    t = torch.tensor([int(flag)], device=_DEVICE)
    dist.all_reduce(t)
    return bool(t.item())


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over ranks (every rank passes the same keys), e.g. logged losses of the global batch."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_DEVICE)
    dist.all_reduce(t)
    mean = dict(zip(keys, (t / dist.get_world_size()).tolist(), strict=True))
    return {k: mean[k] for k in values}


def broadcast_float(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. a validation metric that drives the plateau schedule)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_DEVICE)
    dist.broadcast(t, src=0)
    return float(t.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
