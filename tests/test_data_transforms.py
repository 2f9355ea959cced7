"""Paired transforms: nearest for ids, one crop/flip for all maps, deterministic test mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixtrans.config import DataConfig
from pixtrans.data.labels import colorize
from pixtrans.data.palettes import palette
from pixtrans.data.transforms import PairedTransform, color_jitter, resize_ids


def _blocks(h, w, block=8, n=20, seed=0):
    """A label map of block x block squares with random ids."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, n, (h // block + 1, w // block + 1))
    return np.kron(small, np.ones((block, block), np.int64))[:h, :w]


def test_resize_ids_never_invents_ids():
    ids = np.random.default_rng(0).choice([0, 3, 26001, 33000], size=(37, 53))
    for w, h in ((64, 64), (17, 91), (5, 3), (53, 37)):
        out = resize_ids(ids, w, h)
        assert out.shape == (h, w) and set(np.unique(out)) <= set(np.unique(ids))
    assert np.array_equal(resize_ids(ids, 53, 37), ids)


def test_crop_and_flip_identical_for_all_maps():
    # position-coded maps: label = y * W + x, photo R = x, G = y -> after the transform they must still agree
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w]
    maps = {"label": yy * w + xx, "inst": yy * w + xx, "target": np.dstack([xx, yy, xx * 0]).astype(np.uint8)}
    t = PairedTransform(DataConfig(preprocess="crop", crop_size=24, flip=True), train=True)
    gen = torch.Generator().manual_seed(0)
    flips, crops = set(), set()
    for _ in range(30):
        out = t(maps, gen)
        lab, tgt = out["label"], out["target"]
        assert lab.shape == (24, 24) and tgt.shape == (24, 24, 3)
        assert np.array_equal(lab, out["inst"])
        assert np.array_equal(lab % w, tgt[..., 0]) and np.array_equal(lab // w, tgt[..., 1])
        flips.add(bool(lab[0, 0] > lab[0, 1]))
        crops.add(int(lab.min()))
    assert flips == {True, False} and len(crops) > 5


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "scale_width_and_crop", "scale_width", "none"])
def test_resized_photo_matches_label(preprocess):
    label = _blocks(64, 80, block=16)
    pal = palette(20)
    maps = {"label": label, "target": colorize(label, pal)}
    cfg = DataConfig(preprocess=preprocess, load_size=72, crop_size=64, flip=True)
    out = PairedTransform(cfg, train=True)(maps, torch.Generator().manual_seed(3))
    assert out["label"].shape == out["target"].shape[:2]
    assert set(np.unique(out["label"])) <= set(np.unique(label))

    def agree(lab):
        return (np.abs(colorize(lab, pal).astype(int) - out["target"]) <= 12).all(-1).mean()

    assert agree(out["label"]) > 0.75  # bicubic blurs block edges only
    assert agree(np.roll(out["label"], 3, axis=1)) < agree(out["label"]) - 0.1  # a 3 px misalignment shows


def test_sizes_and_test_mode_determinism():
    maps = {"label": _blocks(37, 100), "target": np.zeros((37, 100, 3), np.uint8)}

    def size(preprocess, train, **kw):
        cfg = DataConfig(preprocess=preprocess, load_size=64, crop_size=32, **kw)
        return PairedTransform(cfg, train)(maps, torch.Generator().manual_seed(0))["label"].shape

    assert size("resize_and_crop", True) == (32, 32)
    assert size("resize_and_crop", False) == (32, 32)
    h = size("scale_width", True)[0]
    assert size("scale_width", True)[1] == 64 and h % 4 == 0 and abs(h - 64 * 37 / 100) <= 2
    assert size("scale_width_and_crop", True) == (32, 32)
    ht, wt = size("scale_width_and_crop", False)
    assert wt == 32 and ht % 4 == 0
    assert size("crop", False) == (32, 32)
    assert size("none", False) == (36, 100)
    cfg = DataConfig(preprocess="crop", crop_size=16, flip=True, color_jitter=1.0)
    t = PairedTransform(cfg, train=False)
    a, b = t(maps), t(maps)
    assert np.array_equal(a["label"], b["label"]) and np.array_equal(a["label"], maps["label"][10:26, 42:58])


def test_color_jitter_only_on_photos():
    rng = np.random.default_rng(0)
    maps = {"label": _blocks(32, 32), "target": rng.integers(30, 220, (32, 32, 3), dtype=np.uint8)}
    cfg = DataConfig(preprocess="none", flip=False, color_jitter=1.0)
    out = PairedTransform(cfg, train=True)(maps, torch.Generator().manual_seed(1))
    assert np.array_equal(out["label"], maps["label"])
    assert not np.array_equal(out["target"], maps["target"])
    off = PairedTransform(cfg.model_copy(update={"color_jitter": 0.0}), train=True)(maps)
    assert np.array_equal(off["target"], maps["target"])
    same = color_jitter(maps["target"], (1.0, 1.0, 1.0, 0.0))
    assert np.abs(same.astype(int) - maps["target"]).max() <= 1
