"""Instance-wise average pooling (pix2pixHD feature encoder): every pixel gets the mean feature of its instance.

:func:`instance_mean_pool` is vectorised (one ``unique`` + two ``scatter_add`` + one ``gather``, no python loop over
instances); :func:`instance_mean_pool_reference` is the obvious loop, kept as the ground truth for tests.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check(feat: Tensor, inst: Tensor) -> None:
    if feat.dim() != 4 or inst.dim() != 4 or inst.shape[1] != 1:
        raise ValueError(
            f"expected feat (B, C, H, W) and inst (B, 1, H, W); got {tuple(feat.shape)}, {tuple(inst.shape)}"
        )
    if feat.shape[0] != inst.shape[0] or feat.shape[2:] != inst.shape[2:]:
        raise ValueError(f"feat {tuple(feat.shape)} and inst {tuple(inst.shape)} differ in batch or spatial size")
    if inst.is_floating_point() or inst.is_complex():
        raise ValueError(f"inst must hold integer instance ids, got dtype {inst.dtype}")


def instance_segments(inst: Tensor) -> tuple[Tensor, int]:
    """Dense segment index per pixel, ``(B, H*W)`` in ``[0, K)``, and ``K``.

    Ids spanning a small range are used directly (offset by the minimum, no sort). Otherwise only the first id of
    every horizontal run of equal ids goes through ``torch.unique`` (maps are made of large regions, so there are
    far fewer runs than pixels) and the runs' indices are spread back to their pixels. The same id in two batch
    elements gets one index; pooling keeps batch elements apart by its own batch dimension.
    """
    ids = inst.reshape(inst.shape[0], -1).long()
    lo, hi = (int(v) for v in torch.aminmax(ids))
    if hi - lo < max(ids.shape[1], 65536):
        return ids - lo if lo else ids, hi - lo + 1
    flat = ids.reshape(-1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    torch.ne(flat[1:], flat[:-1], out=starts[1:])
    run = starts.cumsum(0).sub_(1)
    uniq, inverse = torch.unique(flat[starts], return_inverse=True)
    return inverse[run].reshape(ids.shape), uniq.numel()


def instance_mean_pool(feat: Tensor, inst: Tensor) -> Tensor:
    """(B, C, H, W) features, (B, 1, H, W) integer ids -> (B, C, H, W) with each instance's mean feature.

    Ids are independent per batch element. Differentiable (gradients spread evenly over the instance). Sums are
    taken in float32 so half/bfloat16 features keep their precision.
    """
    _check(feat, inst)
    b, c, h, w = feat.shape
    seg, k = instance_segments(inst)
    flat = feat.reshape(b, c, h * w).float()
    index = seg.unsqueeze(1)  # (B, 1, HW)
    sums = flat.new_zeros(b, c, k).scatter_add_(2, index.expand(b, c, h * w), flat)
    counts = flat.new_zeros(b, 1, k).scatter_add_(2, index, flat.new_ones(1, 1, 1).expand(b, 1, h * w))
    means = sums / counts.clamp_min_(1.0)
    return means.gather(2, index.expand(b, c, h * w)).reshape(b, c, h, w).to(feat.dtype)


def instance_means(feat: Tensor, inst: Tensor) -> list[dict[int, Tensor]]:
    """Per batch element, ``{instance id: (C,) mean feature}`` (used to collect features for K-means)."""
    _check(feat, inst)
    out = []
    for f, m in zip(feat, inst):
        ids, inverse = torch.unique(m.reshape(-1), return_inverse=True)
        flat = f.reshape(f.shape[0], -1).float()
        sums = flat.new_zeros(f.shape[0], ids.numel()).index_add_(1, inverse, flat)
        counts = torch.bincount(inverse, minlength=ids.numel()).to(flat)
        means = (sums / counts).t()
        out.append({int(i): means[j] for j, i in enumerate(ids.tolist())})
    return out


def instance_mean_pool_reference(feat: Tensor, inst: Tensor) -> Tensor:
    """Naive loop over batch elements and instances (the test oracle; slow)."""
    _check(feat, inst)
    out = torch.empty_like(feat)
    for bi in range(feat.shape[0]):
        ids = inst[bi, 0]
        for i in torch.unique(ids).tolist():
            mask = ids == i
            out[bi][:, mask] = feat[bi][:, mask].mean(dim=1, keepdim=True)
    return out
