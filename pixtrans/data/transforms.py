"""Paired transforms: one set of random parameters applied identically to every map of an item.

Maps are numpy arrays: photos are uint8 (H, W, C) and resized bicubic; id maps (labels, instances) are integer
(H, W) and resized nearest-neighbour (never interpolated, so no new ids appear).

``cfg.preprocess`` (training / ``train=False`` deterministic test):

- ``resize_and_crop``: resize to ``load_size`` square, random ``crop_size`` crop / resize to ``crop_size`` square
- ``scale_width``: width to ``load_size`` keeping the aspect (height snapped to a multiple of 4) / same
- ``scale_width_and_crop``: width to ``load_size`` (height >= ``crop_size``), random crop / width to ``crop_size``
- ``crop``: random ``crop_size`` crop (images smaller than that are scaled up first) / centre crop
- ``none``: only snap both sides to a multiple of 4 / same

Training also flips horizontally with probability 0.5 (``cfg.flip``) and, with probability ``cfg.color_jitter``,
jitters brightness, contrast, saturation and hue of the photos named in ``jitter_keys``.
Random numbers come from the given ``torch.Generator`` (the global torch RNG without one). Training passes one
seeded by (seed, epoch, item index) (:func:`pixtrans.data.datasets.item_generator`), so an item's augmentation does
not depend on DataLoader workers, world size or a resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

BASE = 4  # sizes snapped to a multiple of this (official make_power_2 base)


def snap(v: float, base: int = BASE) -> int:
    """Round to the nearest multiple of ``base`` (at least ``base``)."""
    return max(base, int(round(v / base)) * base)


def resize_ids(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """Nearest-neighbour resize of an integer (H, W) map (pixel-centre sampling, no new values)."""
    ih, iw = arr.shape[:2]
    if (iw, ih) == (w, h):
        return arr
    ys = np.minimum(((np.arange(h) + 0.5) * ih / h).astype(np.int64), ih - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * iw / w).astype(np.int64), iw - 1)
    return arr[ys[:, None], xs[None, :]]


def resize_photo(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bicubic resize of a uint8 (H, W, C) photo."""
    ih, iw = arr.shape[:2]
    if (iw, ih) == (w, h):
        return arr
    if arr.shape[2] == 1:
        return np.asarray(Image.fromarray(arr[..., 0]).resize((w, h), Image.BICUBIC))[..., None]
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.BICUBIC))


def resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize a map by kind: (H, W) ids nearest, (H, W, C) photos bicubic."""
    return resize_ids(arr, w, h) if arr.ndim == 2 else resize_photo(arr, w, h)


def _rand(gen: torch.Generator | None) -> float:
    return float(torch.rand((), generator=gen))


def _randint(hi: int, gen: torch.Generator | None) -> int:
    """Uniform integer in [0, hi]."""
    return int(torch.randint(0, hi + 1, (), generator=gen)) if hi > 0 else 0


@dataclass
class Params:
    """The random choices for one item."""

    size: tuple[int, int]  # (w, h) after resizing
    crop: tuple[int, int, int, int] | None  # (x, y, w, h) or None
    flip: bool
    jitter: tuple[float, float, float, float] | None  # brightness, contrast, saturation factors, hue shift


def plan(
    w: int,
    h: int,
    preprocess: str,
    load_size: int,
    crop_size: int,
    train: bool,
    flip: bool,
    jitter_p: float,
    gen: torch.Generator | None = None,
) -> Params:
    """Choose output size, crop, flip and jitter for an item of size ``w`` x ``h``."""
    crop = None
    if preprocess == "resize_and_crop":
        if train:
            size = (load_size, load_size)
            c = min(crop_size, load_size)
            crop = (_randint(load_size - c, gen), _randint(load_size - c, gen), c, c)
        else:
            size = (crop_size, crop_size)
    elif preprocess == "scale_width":
        size = (load_size, snap(load_size * h / w))
    elif preprocess == "scale_width_and_crop":
        if train:
            nh = max(int(round(load_size * h / w)), crop_size)
            size = (load_size, nh)
            cw, ch = min(crop_size, load_size), min(crop_size, nh)
            crop = (_randint(load_size - cw, gen), _randint(nh - ch, gen), cw, ch)
        else:
            size = (snap(crop_size), snap(crop_size * h / w))
    elif preprocess == "crop":
        scale = max(1.0, crop_size / min(w, h))
        size = (max(crop_size, int(round(w * scale))), max(crop_size, int(round(h * scale))))
        mx, my = size[0] - crop_size, size[1] - crop_size
        if train:
            crop = (_randint(mx, gen), _randint(my, gen), crop_size, crop_size)
        else:
            crop = (mx // 2, my // 2, crop_size, crop_size)
    elif preprocess == "none":
        size = (snap(w), snap(h))
    else:
        raise ValueError(f"unknown preprocess mode {preprocess!r}")
    do_flip = train and flip and _rand(gen) < 0.5
    jit = None
    if train and jitter_p > 0 and _rand(gen) < jitter_p:
        jit = (
            0.8 + 0.4 * _rand(gen),  # brightness
            0.8 + 0.4 * _rand(gen),  # contrast
            0.8 + 0.4 * _rand(gen),  # saturation
            (_rand(gen) - 0.5) * 0.1,  # hue shift (fraction of the colour wheel)
        )
    return Params(size=size, crop=crop, flip=do_flip, jitter=jit)


def color_jitter(arr: np.ndarray, factors: tuple[float, float, float, float]) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter of a uint8 (H, W, 3) photo."""
    b, c, s, hue = factors
    x = arr.astype(np.float32) * b
    grey = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
    x = (x - grey.mean()) * c + grey.mean()
    grey = (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)[..., None]
    x = grey + (x - grey) * s
    x = np.clip(x, 0, 255).astype(np.uint8)
    if abs(hue) > 1e-4 and arr.shape[2] == 3:
        hsv = np.asarray(Image.fromarray(x).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(round(hue * 255))) % 256
        x = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
    return x


def apply(maps: dict[str, np.ndarray], p: Params, jitter_keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Apply the same size/crop/flip to every map; jitter only the photos in ``jitter_keys``."""
    out = {}
    for k, arr in maps.items():
        a = resize(arr, *p.size)
        if p.crop is not None:
            x, y, cw, ch = p.crop
            a = a[y : y + ch, x : x + cw]
        if p.flip:
            a = a[:, ::-1]
        if p.jitter is not None and k in jitter_keys and a.ndim == 3 and a.shape[2] == 3:
            a = color_jitter(a, p.jitter)
        out[k] = np.ascontiguousarray(a)
    return out


class PairedTransform:
    """Callable ``maps -> maps`` for a :class:`~pixtrans.config.DataConfig`; the first map sets the size."""

    def __init__(self, cfg, train: bool, jitter_keys: tuple[str, ...] = ("target",)):
        self.preprocess = cfg.preprocess
        self.load_size, self.crop_size = cfg.load_size, cfg.crop_size
        self.flip, self.jitter_p = cfg.flip, cfg.color_jitter
        self.train, self.jitter_keys = train, jitter_keys

    def params(self, w: int, h: int, gen: torch.Generator | None = None) -> Params:
        return plan(w, h, self.preprocess, self.load_size, self.crop_size, self.train, self.flip, self.jitter_p, gen)

    def __call__(self, maps: dict[str, np.ndarray], gen: torch.Generator | None = None) -> dict[str, np.ndarray]:
        h, w = next(iter(maps.values())).shape[:2]
        return apply(maps, self.params(w, h, gen), self.jitter_keys)
