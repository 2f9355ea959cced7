"""Label encoding: one-hot label maps (with an optional don't-care class) and instance boundary maps."""

from __future__ import annotations

import torch
from torch import Tensor

DONTCARE = 255


def one_hot(label: Tensor, label_nc: int, contain_dontcare: bool = False) -> Tensor:
    """(B, 1, H, W) integer ids -> (B, C, H, W) float one-hot.

    ``C = label_nc + 1`` with ``contain_dontcare``: id 255 goes to the extra last channel (SPADE convention).
    Without it, ids must be < ``label_nc`` (the datasets check this with a clear error before we get here).
    """
    ids = label.long()
    nc = label_nc + int(contain_dontcare)
    if contain_dontcare:
        ids = torch.where(ids == DONTCARE, torch.full_like(ids, label_nc), ids)
    if ids.numel() and (int(ids.max()) >= nc or int(ids.min()) < 0):
        raise ValueError(f"label ids must be in [0, {nc}); found {int(ids.min())}..{int(ids.max())}")
    out = torch.zeros(ids.shape[0], nc, *ids.shape[2:], device=ids.device)
    return out.scatter_(1, ids, 1.0)


def boundary_map(inst: Tensor) -> Tensor:
    """(B, 1, H, W) instance ids -> float map that is 1 where a pixel differs from any 4-neighbour."""
    inst = inst.long()
    edge = torch.zeros_like(inst, dtype=torch.bool)
    dx = inst[..., :, 1:] != inst[..., :, :-1]
    dy = inst[..., 1:, :] != inst[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()
