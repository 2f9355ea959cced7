"""Exact tiled inference in bounded memory: the untiled output, computed tile by tile, for every family.

Translating tiles independently is wrong for these networks: every instance norm (and batch norm in the paper's
test mode, SPADE's parameter-free norms) would normalise each tile with its own statistics, and the receptive field
of a global generator spans the whole image. Instead the family's own network runs once on a :class:`Big` tensor
stand-in (``__torch_function__``), and each operation is evaluated over tiles:

- convolutions, transposed convolutions and average pools are computed output tile by output tile from input tiles
  with exactly the halo the operation reads (its kernel, stride and padding), and their outputs are stored;
- normalisation layers first accumulate per-channel sums and sums of squares over all tiles of their input (float64),
  then normalise lazily with those whole-image statistics (batch norms in training mode also update their running
  statistics as torch would);
- padding and nearest resizing are index maps, element-wise operations and channel concatenations are lazy, both
  evaluated per tile when a convolution or the output reads them; a lazy value that would keep more than one stored
  tensor alive is stored instead, so memory holds a handful of feature maps, never a whole network's;
- the network input (one-hot labels and instance boundaries) is encoded per tile on demand
  (:meth:`~pixtrans.families.base.TranslationModel.encode_input`, halo :attr:`input_halo`), never for the whole image.

Every result equals the untiled network up to float rounding (tests: PSNR >= 45 dB, usually > 100 dB). Anything the
engine does not know (random dropout, bilinear resizing...) runs untiled on the full tensor, with a warning, so the
output stays right. Entry point: :func:`translate_tiled` (``Translator.translate(..., tile=N)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..families.base import Translation, TranslationModel

Region = tuple[int, int, int, int]  # y0, y1, x0, x1 (end exclusive)
MAX_DEPTH = 24  # lazy element-wise chains longer than this are stored (re-evaluating them per read costs time)


# ---------------------------------------------------------------------------------------------- nodes (immutable)
class _Node:
    """A (B, C, H, W) value whose regions can be read; ``bases``: the stored tensors it reads."""

    shape: torch.Size
    dtype: torch.dtype
    device: torch.device
    bases: frozenset[int] = frozenset()
    depth: int = 0

    def read(self, r: Region) -> Tensor:
        raise NotImplementedError


class _Stored(_Node):
    def __init__(self, data: Tensor):
        self.data, self.shape, self.dtype, self.device = data, data.shape, data.dtype, data.device
        self.bases = frozenset([id(self)])

    def read(self, r: Region) -> Tensor:
        return self.data[..., r[0] : r[1], r[2] : r[3]]


class _Source(_Node):
    """The network input, encoded per region by ``fn(region)``."""

    def __init__(self, fn: Callable[[Region], Tensor], shape: torch.Size, dtype: torch.dtype, device: torch.device):
        self.fn, self.shape, self.dtype, self.device = fn, shape, dtype, device

    def read(self, r: Region) -> Tensor:
        return self.fn(r)


def _operand(a: Any, r: Region, hw: tuple[int, int]) -> Any:
    if isinstance(a, _Node):
        return a.read(r)
    if isinstance(a, Tensor) and a.dim() >= 2 and tuple(a.shape[-2:]) == hw and hw != (1, 1):
        return a[..., r[0] : r[1], r[2] : r[3]]
    return a


class _Pointwise(_Node):
    """``fn(*args, **kwargs)`` evaluated per region; args are nodes, full-size tensors (sliced) or broadcast values."""

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, shape: torch.Size, dtype: torch.dtype, device):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.shape, self.dtype, self.device = shape, dtype, device
        nodes = [a for a in args if isinstance(a, _Node)]
        self.bases = frozenset().union(*(n.bases for n in nodes))
        self.depth = 1 + max(n.depth for n in nodes)

    def read(self, r: Region) -> Tensor:
        hw = (self.shape[-2], self.shape[-1])
        fn = self.fn
        if fn in _IN_PLACE and isinstance(self.args[0], (_Pointwise, _Cat, _Gather, _Source)):
            fn = _IN_PLACE[fn]  # the operand is a fresh tile nobody else holds: no extra copy
        return fn(*(_operand(a, r, hw) for a in self.args), **self.kwargs)


class _Cat(_Node):
    def __init__(self, parts: list, shape: torch.Size, dtype: torch.dtype, device):
        self.parts, self.shape, self.dtype, self.device = parts, shape, dtype, device
        nodes = [a for a in parts if isinstance(a, _Node)]
        self.bases = frozenset().union(*(n.bases for n in nodes))
        self.depth = 1 + max(n.depth for n in nodes)

    def read(self, r: Region) -> Tensor:
        hw = (self.shape[-2], self.shape[-1])
        return torch.cat([_operand(a, r, hw).to(self.dtype) for a in self.parts], 1)


class _Gather(_Node):
    """``out[..., i, j] = src[..., rows[i], cols[j]]``, zero where an index is -1 (padding, nearest resizing)."""

    def __init__(self, src: _Node, rows: Tensor, cols: Tensor):
        self.src, self.rows, self.cols = src, rows, cols
        self.shape = torch.Size([*src.shape[:2], len(rows), len(cols)])
        self.dtype, self.device, self.bases, self.depth = src.dtype, src.device, src.bases, src.depth + 1

    def read(self, r: Region) -> Tensor:
        rows, cols = self.rows[r[0] : r[1]], self.cols[r[2] : r[3]]
        out = torch.zeros(*self.shape[:2], len(rows), len(cols), dtype=self.dtype, device=self.device)
        vr, vc = rows >= 0, cols >= 0
        if not bool(vr.any()) or not bool(vc.any()):
            return out
        need = torch.unique(rows[vr])
        c0, c1 = int(cols[vc].min()), int(cols[vc].max()) + 1
        # runs of consecutive source rows, each read once (a strong downsampling reads single rows)
        cut = (torch.nonzero(need[1:] - need[:-1] != 1).flatten() + 1).tolist()
        runs = [need[a:b] for a, b in zip([0, *cut], [*cut, len(need)], strict=True)]
        block = torch.cat([self.src.read((int(u[0]), int(u[-1]) + 1, c0, c1)) for u in runs], 2)
        pos = torch.searchsorted(need, rows[vr])
        picked = block.index_select(2, pos).index_select(3, cols[vc] - c0)
        if bool(vr.all()) and bool(vc.all()):
            return picked
        out[:, :, vr.nonzero().flatten()[:, None], vc.nonzero().flatten()[None, :]] = picked
        return out


# ---------------------------------------------------------------------------------------------- the tensor stand-in
class Big:
    """A feature map too large to hold in every form at once: a handle on an immutable node (in-place operations
    rebind the handle). Torch functions on it are evaluated tile by tile (see the module docstring)."""

    def __init__(self, node: _Node, tile: int):
        self._node, self._tile = node, tile

    # ---------------------------------------------------------------- tensor-like attributes
    @property
    def shape(self) -> torch.Size:
        return self._node.shape

    @property
    def dtype(self) -> torch.dtype:
        return self._node.dtype

    @property
    def device(self) -> torch.device:
        return self._node.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    requires_grad = False
    is_cuda = False

    def dim(self) -> int:
        return len(self.shape)

    def size(self, i: int | None = None):
        return self.shape if i is None else self.shape[i]

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def contiguous(self, *args, **kwargs) -> Big:
        return self

    def detach(self) -> Big:
        return self

    def __repr__(self) -> str:
        return f"Big(shape={tuple(self.shape)}, dtype={self.dtype}, node={type(self._node).__name__})"

    def materialize(self) -> Tensor:
        """The whole value as a tensor."""
        return _store(self._node, self._tile).data

    # ---------------------------------------------------------------- operators and methods
    def __add__(self, o):
        return _pointwise(torch.add, (self, o), {})

    __radd__ = __add__

    def __mul__(self, o):
        return _pointwise(torch.mul, (self, o), {})

    __rmul__ = __mul__

    def __sub__(self, o):
        return _pointwise(torch.sub, (self, o), {})

    def __rsub__(self, o):
        return _pointwise(torch.sub, (o, self), {})

    def __truediv__(self, o):
        return _pointwise(torch.div, (self, o), {})

    def __neg__(self):
        return _pointwise(torch.neg, (self,), {})

    def _rebind(self, other: Big) -> Big:
        self._node = other._node
        return self

    def add_(self, o, alpha=1):
        return self._rebind(_pointwise(torch.add, (self, o), {"alpha": alpha} if alpha != 1 else {}))

    def mul_(self, o):
        return self._rebind(_pointwise(torch.mul, (self, o), {}))

    def relu_(self):
        return self._rebind(_pointwise(torch.relu, (self,), {}))

    def tanh_(self):
        return self._rebind(_pointwise(torch.tanh, (self,), {}))

    def relu(self):
        return _pointwise(torch.relu, (self,), {})

    def tanh(self):
        return _pointwise(torch.tanh, (self,), {})

    def float(self):
        return self.to(torch.float32)

    def to(self, *args, **kwargs):
        dtype = kwargs.get("dtype") or next((a for a in args if isinstance(a, torch.dtype)), None)
        if dtype is None or dtype == self.dtype:
            return self
        return _pointwise(Tensor.to, (self, dtype), {})

    def __getitem__(self, idx):
        """Spatial crops ``x[..., a:b, c:d]`` (step 1); anything else runs on the whole tensor."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        spatial = all(isinstance(s, slice) and s.step in (None, 1) for s in idx[1:])
        if idx[:1] == (Ellipsis,) and len(idx) == 3 and spatial:
            h, w = self.shape[-2:]
            (r0, r1, _), (c0, c1, _) = idx[1].indices(h), idx[2].indices(w)
            rows, cols = torch.arange(r0, max(r0, r1)), torch.arange(c0, max(c0, c1))
            return Big(_Gather(self._node, rows, cols), self._tile)
        return _fallback("__getitem__", Tensor.__getitem__, (self, idx), {})

    # ---------------------------------------------------------------- torch functions
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        handler = _HANDLERS.get(name)
        if handler is not None:
            out = handler(*args, **kwargs)
            if out is not NotImplemented:
                return out
        return _fallback(name, func, args, kwargs)


# ---------------------------------------------------------------------------------------------- helpers
def _tile_of(*args) -> int:
    for a in args:
        if isinstance(a, Big):
            return a._tile
        if isinstance(a, (list, tuple)):
            t = _tile_of(*a)
            if t:
                return t
    return 0


def regions(h: int, w: int, tile: int) -> Iterator[Region]:
    """The tiles (y0, y1, x0, x1) covering an h x w map."""
    t = max(1, tile)
    for y in range(0, h, t):
        for x in range(0, w, t):
            yield y, min(h, y + t), x, min(w, x + t)


def _store(node: _Node, tile: int) -> _Stored:
    if isinstance(node, _Stored):
        return node
    out = torch.empty(node.shape, dtype=node.dtype, device=node.device)
    for r in regions(node.shape[-2], node.shape[-1], tile):
        out[..., r[0] : r[1], r[2] : r[3]] = node.read(r)
    return _Stored(out)


def _wrap(node: _Node, tile: int) -> Big:
    """A handle on ``node``, stored first when it would keep several stored tensors alive or its chain is long."""
    if not isinstance(node, _Stored) and (len(node.bases) > 1 or node.depth > MAX_DEPTH):
        node = _store(node, tile)
    return Big(node, tile)


def _unwrap(a):
    return a._node if isinstance(a, Big) else a


def _real(a):
    if isinstance(a, Big):
        return a.materialize()
    if isinstance(a, (list, tuple)):
        return type(a)(_real(v) for v in a)
    return a


_warned: set[str] = set()


def _fallback(name: str, func, args, kwargs):
    """Run ``func`` untiled on whole tensors (correct, not memory-bounded)."""
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"tiled inference: {name} runs on the whole feature map (not tiled)", stacklevel=3)
    out = func(*_real(args), **{k: _real(v) for k, v in kwargs.items()})
    tile = _tile_of(args, list(kwargs.values()))
    if isinstance(out, Tensor) and out.dim() == 4 and tile and min(out.shape[-2:]) > tile:
        return Big(_Stored(out), tile)
    return out


def _probe(a: Any, hw: tuple[int, int]) -> Any:
    """A 1x1 stand-in of an operand (for the result's shape and dtype)."""
    if isinstance(a, Big):
        return torch.zeros(*a.shape[:2], 1, 1, dtype=a.dtype, device=a.device)
    if isinstance(a, Tensor) and a.dim() >= 2 and tuple(a.shape[-2:]) == hw:
        return a[..., :1, :1]
    return a


def _pointwise(fn: Callable, args: tuple, kwargs: dict):
    bigs = [a for a in args if isinstance(a, Big)]
    hw = tuple(bigs[0].shape[-2:])
    if any(tuple(b.shape[-2:]) != hw or b.dim() != 4 for b in bigs):
        return NotImplemented
    for a in args:
        if isinstance(a, Tensor) and a.dim() >= 2 and tuple(a.shape[-2:]) not in (hw, (1, 1)):
            return NotImplemented
    probe = fn(*(_probe(a, hw) for a in args), **kwargs)
    if not isinstance(probe, Tensor) or probe.dim() != 4:
        return NotImplemented
    shape = torch.Size([*probe.shape[:2], *hw])
    node = _Pointwise(fn, tuple(_unwrap(a) for a in args), kwargs, shape, probe.dtype, bigs[0].device)
    return _wrap(node, bigs[0]._tile)


def _pointwise_handler(fn: Callable, inplace_kw: str | None = "inplace"):
    def handler(*args, **kwargs):
        inplace = bool(kwargs.pop(inplace_kw, False)) if inplace_kw else False
        out = _pointwise(fn, args, kwargs)
        if out is NotImplemented or not inplace:
            return out
        return args[0]._rebind(out)

    return handler


def _inplace_handler(fn: Callable):
    def handler(x, *args, **kwargs):
        if not isinstance(x, Big):
            return NotImplemented
        out = _pointwise(fn, (x, *args), kwargs)
        return out if out is NotImplemented else x._rebind(out)

    return handler


def _index_pad(n: int, before: int, after: int, mode: str) -> Tensor:
    """Source index of every padded position (-1 = zero)."""
    i = torch.arange(-before, n + after)
    if mode == "constant":
        return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))
    if mode == "reflect":
        i = i.abs()
        return torch.where(i >= n, 2 * (n - 1) - i, i)
    return i.clamp(0, n - 1)  # replicate


def _padded(x: Big, top: int, bottom: int, left: int, right: int, mode: str = "constant") -> _Node:
    node = x._node
    if not (top or bottom or left or right):
        return node
    h, w = node.shape[-2:]
    return _Gather(node, _index_pad(h, top, bottom, mode), _index_pad(w, left, right, mode))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _out_tile(tile: int, sy: int, sx: int) -> int:
    """Output tile side of a strided operation whose input tiles stay about ``tile`` wide."""
    return max(8, tile // max(1, sy, sx))


def _crop_fill(t: Tensor, y0: int, ny: int, x0: int, nx: int) -> Tensor:
    """Rows ``y0 .. y0+ny`` and columns ``x0 .. x0+nx`` of ``t``, zero outside it."""
    if y0 >= 0 and x0 >= 0 and y0 + ny <= t.shape[-2] and x0 + nx <= t.shape[-1]:
        return t[..., y0 : y0 + ny, x0 : x0 + nx]
    out = t.new_zeros(*t.shape[:-2], ny, nx)
    sy0, sx0 = max(0, y0), max(0, x0)
    sy1, sx1 = min(t.shape[-2], y0 + ny), min(t.shape[-1], x0 + nx)
    if sy1 > sy0 and sx1 > sx0:
        out[..., sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = t[..., sy0:sy1, sx0:sx1]
    return out


# ---------------------------------------------------------------------------------------------- handlers
def _conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if not isinstance(input, Big) or isinstance(weight, Big) or input.dim() != 4:
        return NotImplemented
    (sy, sx), (dy, dx) = _pair(stride), _pair(dilation)
    kh, kw = weight.shape[-2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        else:  # 'same' (stride 1): extra padding after, as torch
            th, tw = dy * (kh - 1), dx * (kw - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        py, px = _pair(padding)
        pads = (py, py, px, px)
    src = _padded(input, *pads)
    hp, wp = src.shape[-2:]
    ho, wo = (hp - dy * (kh - 1) - 1) // sy + 1, (wp - dx * (kw - 1) - 1) // sx + 1
    b = input.shape[0]
    out = torch.empty(b, weight.shape[0], ho, wo, dtype=input.dtype, device=input.device)
    for oy0, oy1, ox0, ox1 in regions(ho, wo, _out_tile(input._tile, sy, sx)):
        r = (oy0 * sy, (oy1 - 1) * sy + dy * (kh - 1) + 1, ox0 * sx, (ox1 - 1) * sx + dx * (kw - 1) + 1)
        out[..., oy0:oy1, ox0:ox1] = F.conv2d(src.read(r), weight, bias, (sy, sx), 0, (dy, dx), groups)
    return Big(_Stored(out), input._tile)


def _conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if not isinstance(input, Big) or isinstance(weight, Big) or _pair(dilation) != (1, 1):
        return NotImplemented
    (sy, sx), (py, px), (opy, opx) = _pair(stride), _pair(padding), _pair(output_padding)
    kh, kw = weight.shape[-2:]
    h, w = input.shape[-2:]
    ho, wo = (h - 1) * sy - 2 * py + kh + opy, (w - 1) * sx - 2 * px + kw + opx
    cout = weight.shape[1] * groups
    out = torch.empty(input.shape[0], cout, ho, wo, dtype=input.dtype, device=input.device)
    node = input._node
    for oy0, oy1, ox0, ox1 in regions(ho, wo, input._tile):
        # full (unpadded) transposed-conv rows r = o + padding; input row i reaches rows i*s .. i*s + k - 1
        ry0, ry1, rx0, rx1 = oy0 + py, oy1 + py, ox0 + px, ox1 + px
        a, bb = max(0, -(-(ry0 - kh + 1) // sy)), min(h, (ry1 - 1) // sy + 1)
        c, d = max(0, -(-(rx0 - kw + 1) // sx)), min(w, (rx1 - 1) // sx + 1)
        if a < bb and c < d:
            t = F.conv_transpose2d(node.read((a, bb, c, d)), weight, None, (sy, sx), 0, 0, groups)
            t = _crop_fill(t, ry0 - a * sy, oy1 - oy0, rx0 - c * sx, ox1 - ox0)
        else:
            t = torch.zeros(input.shape[0], cout, oy1 - oy0, ox1 - ox0, dtype=input.dtype, device=input.device)
        if bias is not None:
            t = t + bias.view(1, -1, 1, 1)
        out[..., oy0:oy1, ox0:ox1] = t
    return Big(_Stored(out), input._tile)


def _avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    if not isinstance(input, Big) or ceil_mode or divisor_override is not None:
        return NotImplemented
    (kh, kw) = _pair(kernel_size)
    (sy, sx) = _pair(stride if stride not in (None, []) else kernel_size)
    (py, px) = _pair(padding)
    h, w = input.shape[-2:]
    src = _padded(input, py, py, px, px)
    ho, wo = (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1
    out = torch.empty(*input.shape[:2], ho, wo, dtype=input.dtype, device=input.device)
    for oy0, oy1, ox0, ox1 in regions(ho, wo, _out_tile(input._tile, sy, sx)):
        r = (oy0 * sy, (oy1 - 1) * sy + kh, ox0 * sx, (ox1 - 1) * sx + kw)
        t = F.avg_pool2d(src.read(r), (kh, kw), (sy, sx))
        if not count_include_pad and (py or px):  # divide by the pixels inside the image, as torch
            ys = torch.arange(r[0], r[1]) - py
            xs = torch.arange(r[2], r[3]) - px
            inside = (((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]).to(t.dtype)
            t = t / F.avg_pool2d(inside[None, None], (kh, kw), (sy, sx))
        out[..., oy0:oy1, ox0:ox1] = t
    return Big(_Stored(out), input._tile)


def _pad(input, pad, mode="constant", value=None):
    if not isinstance(input, Big) or len(pad) not in (2, 4) or mode not in ("constant", "reflect", "replicate"):
        return NotImplemented
    if mode == "constant" and value not in (None, 0, 0.0):
        return NotImplemented
    left, right = pad[0], pad[1]
    top, bottom = (pad[2], pad[3]) if len(pad) == 4 else (0, 0)
    return Big(_padded(input, top, bottom, left, right, mode), input._tile)


def _nearest_index(n: int, size, scale, recompute) -> Tensor:
    probe = torch.arange(n, dtype=torch.float64).view(1, 1, n)
    kw = {"size": size} if size is not None else {"scale_factor": scale, "recompute_scale_factor": recompute}
    return F.interpolate(probe, mode="nearest", **kw)[0, 0].round().long()


def _interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, **kw):
    if not isinstance(input, Big) or mode != "nearest" or input.dim() != 4:
        return NotImplemented
    h, w = input.shape[-2:]
    sizes = [None, None] if size is None else [size, size] if isinstance(size, int) else list(size)
    scales = [scale_factor] * 2 if not isinstance(scale_factor, (tuple, list)) else list(scale_factor)
    recompute = kw.get("recompute_scale_factor")
    rows = _nearest_index(h, sizes[0], scales[0], recompute)
    cols = _nearest_index(w, sizes[1], scales[1], recompute)
    return Big(_Gather(input._node, rows, cols), input._tile)


def _moments(node: _Node, tile: int, dims: tuple[int, ...]) -> tuple[Tensor, Tensor, int]:
    """Mean and biased variance over ``dims`` (float64 sums over tiles), and the count."""
    s = q = None
    for r in regions(node.shape[-2], node.shape[-1], tile):
        t = node.read(r)  # float64 sums of the tile's values and squares (no float64 copy of the tile)
        ts = t.sum(dims, keepdim=True, dtype=torch.float64)
        tq = t.square().sum(dims, keepdim=True, dtype=torch.float64)
        s, q = (ts, tq) if s is None else (s + ts, q + tq)
    n = math.prod(node.shape[d] for d in dims)
    mean = s / n
    return mean, (q / n - mean * mean).clamp_min(0), n


def _normalize(x: Big, mean: Tensor, var: Tensor, eps: float, weight, bias) -> Big:
    c = x.shape[1]
    invstd = torch.rsqrt(var.double() + eps)
    scale = invstd if weight is None else invstd * weight.detach().double().view(1, c, 1, 1)
    shift = torch.zeros(()) if bias is None else bias.detach().double().view(1, c, 1, 1)
    args = (x, mean.to(x.dtype), scale.to(x.dtype), shift.to(x.dtype))
    return _pointwise(_affine, args, {})


def _affine(x: Tensor, mean: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    return (x - mean).mul_(scale).add_(shift)


def _instance_norm(
    input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-5
):
    if not isinstance(input, Big) or input.dim() != 4:
        return NotImplemented
    if not use_input_stats:
        mean, var = running_mean.view(1, -1, 1, 1), running_var.view(1, -1, 1, 1)
    else:
        mean, var, _ = _moments(input._node, input._tile, (2, 3))
    return _normalize(input, mean, var, eps, weight, bias)


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    if not isinstance(input, Big) or input.dim() != 4:
        return NotImplemented
    if not training:
        mean, var = running_mean.view(1, -1, 1, 1), running_var.view(1, -1, 1, 1)
    else:
        mean, var, n = _moments(input._node, input._tile, (0, 2, 3))
        if running_mean is not None:
            m = momentum
            running_mean.mul_(1 - m).add_(m * mean.flatten().to(running_mean.dtype))
            running_var.mul_(1 - m).add_(m * (var.flatten() * n / max(1, n - 1)).to(running_var.dtype))
    return _normalize(input, mean, var, eps, weight, bias)


def _cat(tensors, dim=0):
    bigs = [t for t in tensors if isinstance(t, Big)]
    d = dim % 4 if bigs else dim
    hw = tuple(bigs[0].shape[-2:]) if bigs else None
    if not bigs or d != 1 or any(t.dim() != 4 or tuple(t.shape[-2:]) != hw for t in tensors):
        return NotImplemented
    dtype = torch.result_type(*[torch.zeros((), dtype=t.dtype) for t in tensors]) if len(tensors) > 1 else None
    dtype = dtype or bigs[0].dtype
    shape = torch.Size([bigs[0].shape[0], sum(t.shape[1] for t in tensors), *hw])
    return _wrap(_Cat([_unwrap(t) for t in tensors], shape, dtype, bigs[0].device), bigs[0]._tile)


def _dropout(input, p=0.5, training=True, inplace=False):
    if training and p > 0:
        return NotImplemented  # random: runs on the whole map
    return input


# element-wise functions and their in-place forms (used on fresh tiles)
_IN_PLACE: dict[Callable, Callable] = {
    torch.relu: torch.relu_,
    torch.tanh: torch.tanh_,
    torch.sigmoid: torch.sigmoid_,
    F.leaky_relu: partial(F.leaky_relu, inplace=True),
}

_HANDLERS: dict[str, Callable] = {
    "conv2d": _conv2d,
    "conv_transpose2d": _conv_transpose2d,
    "avg_pool2d": _avg_pool2d,
    "pad": _pad,
    "interpolate": _interpolate,
    "instance_norm": _instance_norm,
    "batch_norm": _batch_norm,
    "cat": _cat,
    "dropout": _dropout,
    "relu": _pointwise_handler(torch.relu),
    "leaky_relu": _pointwise_handler(F.leaky_relu),
    "tanh": _pointwise_handler(torch.tanh, None),
    "sigmoid": _pointwise_handler(torch.sigmoid, None),
    "add": _pointwise_handler(torch.add, None),
    "__add__": _pointwise_handler(torch.add, None),
    "__radd__": _pointwise_handler(torch.add, None),
    "mul": _pointwise_handler(torch.mul, None),
    "__mul__": _pointwise_handler(torch.mul, None),
    "__rmul__": _pointwise_handler(torch.mul, None),
    "sub": _pointwise_handler(torch.sub, None),
    "__sub__": _pointwise_handler(torch.sub, None),
    "div": _pointwise_handler(torch.div, None),
    "__truediv__": _pointwise_handler(torch.div, None),
    "relu_": _inplace_handler(torch.relu),
    "leaky_relu_": _inplace_handler(F.leaky_relu),
    "tanh_": _inplace_handler(torch.tanh),
    "add_": _inplace_handler(torch.add),
    "mul_": _inplace_handler(torch.mul),
}


# ---------------------------------------------------------------------------------------------- entry point
def pad_mode(h: int, w: int, ph: int, pw: int) -> str:
    """How the translator pads a float input to the size multiple (reflect where the image is large enough)."""
    return "reflect" if h > ph and w > pw else "replicate"


@torch.no_grad()
def translate_tiled(model: TranslationModel, x: dict, style: dict | None, tile: int) -> Translation:
    """``model.translate`` of a batch of any size, evaluated in ``tile`` x ``tile`` tiles (see the module
    docstring): the untiled output up to float rounding, in memory for a few feature maps.

    ``x`` is a prepared batch (:meth:`~TranslationModel.prepare`); without ``input`` (``prepare(..., encode=False)``)
    the generator input is encoded per tile from ``label``/``inst``. Inputs are padded to the model's size multiple
    as the translator's untiled path pads them, and outputs cropped back.
    """
    tile = max(8, int(tile))
    ref = x["input"] if "input" in x else x["label"]
    h, w = ref.shape[-2:]
    hp, wp = model.padded_size(h, w)
    ph, pw = hp - h, wp - w
    if "input" in x:
        src: _Node = _Stored(x["input"])
    else:
        src = _encoded_source(model, x, tile)
    big = Big(src, tile)
    if ph or pw:
        big = Big(_padded(big, 0, ph, 0, pw, pad_mode(h, w, ph, pw)), tile)
    xt = {k: _pad_ids(v, ph, pw) if isinstance(v, Tensor) and v.dim() == 4 else v for k, v in x.items()}
    xt["input"] = big
    res = model.translate(xt, style)

    def crop(s) -> Tensor:
        sh, sw = max(1, h * s.shape[-2] // hp), max(1, w * s.shape[-1] // wp)
        if isinstance(s, Big):
            whole = (sh, sw) == tuple(s.shape[-2:])
            return _store(s._node if whole else _Gather(s._node, torch.arange(sh), torch.arange(sw)), tile).data
        return s[..., :sh, :sw]

    image = crop(res.image)
    scales = [image if s is res.image else crop(s) for s in res.scales]
    return Translation(image=image, scales=scales, style=res.style)


def _pad_ids(t: Tensor, ph: int, pw: int) -> Tensor:
    if not (ph or pw):
        return t
    if t.is_floating_point():
        return F.pad(t, (0, pw, 0, ph), mode=pad_mode(t.shape[-2], t.shape[-1], ph, pw))
    return F.pad(t.float(), (0, pw, 0, ph), mode="replicate").to(t.dtype)


def _encoded_source(model: TranslationModel, x: dict, tile: int) -> _Source:
    """The generator input encoded per region from the id maps in ``x`` (with the family's encoding halo)."""
    ids = {k: v for k, v in x.items() if isinstance(v, Tensor) and v.dim() == 4}
    ref = x["label"]
    h, w = ref.shape[-2:]
    halo = model.input_halo

    def encode(r: Region) -> Tensor:
        y0, y1, x0, x1 = max(0, r[0] - halo), min(h, r[1] + halo), max(0, r[2] - halo), min(w, r[3] + halo)
        enc = model.encode_input({k: v[..., y0:y1, x0:x1] for k, v in ids.items()})
        return enc[..., r[0] - y0 : r[1] - y0, r[2] - x0 : r[3] - x0]

    probe = model.encode_input({k: v[..., :1, :1] for k, v in ids.items()})
    return _Source(encode, torch.Size([*probe.shape[:2], h, w]), probe.dtype, probe.device)
