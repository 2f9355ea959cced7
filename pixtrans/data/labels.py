"""Label encoding: one-hot label maps (with an optional don't-care class), instance boundary maps, colourising."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

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


# ---------------------------------------------------------------------------- numpy helpers for files and display
def _ids_numpy(label) -> np.ndarray:
    if isinstance(label, Tensor):
        label = label.detach().cpu().numpy()
    arr = np.asarray(label)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"expected a (H, W) or (1, H, W) label map, got shape {tuple(np.shape(label))}")
    return arr.astype(np.int64, copy=False)


def colorize(label, palette) -> np.ndarray:
    """Label ids (H, W) or (1, H, W) (numpy or tensor) -> uint8 RGB (H, W, 3) with ``palette`` (list of RGB).

    Ids outside the palette (e.g. 255 = don't care) are black.
    """
    ids = _ids_numpy(label)
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    hi = max(int(ids.max()) + 1 if ids.size else 0, len(pal), 256)
    lut = np.zeros((hi, 3), np.uint8)
    lut[: len(pal)] = pal
    return lut[np.clip(ids, 0, hi - 1)] * (ids >= 0)[..., None].astype(np.uint8)


def decolorize(rgb: np.ndarray, palette, path="<image>", dontcare: int | None = None) -> np.ndarray:
    """Colourised label map uint8 (H, W, 3) -> int64 ids by exact palette colour.

    A colour that is not in the palette is an error (or ``dontcare`` when given); where two classes share a
    colour the lower id wins.
    """
    pal = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pcode = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    uniq, first = np.unique(pcode[::-1], return_index=True)  # lowest id per colour
    ids_for = (len(pcode) - 1 - first).astype(np.int64)
    pos = np.clip(np.searchsorted(uniq, code), 0, len(uniq) - 1)
    found = uniq[pos] == code
    if not found.all():
        if dontcare is None:
            y, x = np.argwhere(~found)[0]
            raise DataError(
                path,
                f"colour {tuple(int(c) for c in rgb[y, x])} at x={x}, y={y} is not in the label palette",
                "draw with the palette colours only (no anti-aliasing), or give the label map as ids",
            )
        return np.where(found, ids_for[pos], dontcare)
    return ids_for[pos]


def check_label_range(ids, label_nc: int, contain_dontcare: bool = False, path="<label>") -> None:
    """Raise DataError naming ``path`` unless every id is in [0, label_nc) (or 255 with ``contain_dontcare``)."""
    arr = ids.detach().cpu().numpy() if isinstance(ids, Tensor) else np.asarray(ids)
    if not arr.size:
        return
    if label_nc <= 0:
        raise DataError(path, "a label map was given but label_nc is 0", "set data.label_nc to the number of classes")
    bad = (arr < 0) | (arr >= label_nc)
    if contain_dontcare:
        bad &= arr != DONTCARE
    if not bad.any():
        return
    vals = np.unique(arr[bad])
    shown = ", ".join(str(int(x)) for x in vals[:8]) + (" ..." if len(vals) > 8 else "")
    if vals[0] < 0:
        raise DataError(path, f"negative label id {int(vals[0])}", "label ids must be 0..label_nc-1")
    real = vals[vals != DONTCARE]
    has_dc = bool((vals == DONTCARE).any())
    dc_hint = "255 is the don't-care/unlabeled id: set data.contain_dontcare: true (adds one class channel)"
    if not len(real):
        raise DataError(path, f"label id {DONTCARE} >= label_nc {label_nc}", dc_hint)
    v = int(real.max())
    hint = f"set data.label_nc to at least {v + 1} (ids are 0..label_nc-1)" + (f"; {dc_hint}" if has_dc else "")
    raise DataError(path, f"label id {v} >= label_nc {label_nc} (out-of-range ids: {shown})", hint)
