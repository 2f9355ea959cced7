"""Reading photos / label maps / instance maps: every bad file is a DataError that names it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans.data.io import load_input, read_instance, read_label, read_rgb
from pixtrans.errors import DataError


def _rgb(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_read_rgb_modes(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    assert np.array_equal(read_rgb(tmp_path / "a.png"), arr)
    Image.fromarray(arr[..., 0]).save(tmp_path / "grey.png")
    g = read_rgb(tmp_path / "grey.png")
    assert g.shape == (12, 16, 3) and np.array_equal(g[..., 0], g[..., 2])
    rgba = np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert np.array_equal(read_rgb(tmp_path / "opaque.png"), arr)


@pytest.mark.parametrize(
    "name, make, match",
    [
        ("alpha.png", lambda a: Image.fromarray(np.dstack([a, np.full(a.shape[:2], 7, np.uint8)])), "transparent"),
        ("deep.png", lambda a: Image.fromarray(a[..., 0].astype(np.uint16) * 200), "8-bit photo"),
    ],
)
def test_read_rgb_rejects(tmp_path, name, make, match):
    make(_rgb()).save(tmp_path / name)
    with pytest.raises(DataError, match=match) as e:
        read_rgb(tmp_path / name)
    assert name in str(e.value)


def test_unreadable_truncated_missing(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    for name in ("cut.png", "text.png", "nope.png"):
        for reader in (read_rgb, read_label):
            with pytest.raises(DataError, match=name):
                reader(tmp_path / name)


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    Image.fromarray(_rgb(32, 32)).save(tmp_path / "big.png")
    for limit in (600, 100):  # 1024 px: over the warning limit, then over the hard limit (2x)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(DataError, match=r"big\.png.*too large"):
            read_rgb(tmp_path / "big.png")


def test_read_label_modes(tmp_path):
    ids = np.random.default_rng(0).integers(0, 35, (10, 14), dtype=np.uint8)
    Image.fromarray(ids).save(tmp_path / "l.png")
    out = read_label(tmp_path / "l.png")
    assert out.dtype == np.int64 and np.array_equal(out, ids)
    p = Image.fromarray(ids, "L").convert("P")  # a palette PNG: the indices are the ids
    p.putpalette(np.random.default_rng(1).integers(0, 256, 768).astype(np.uint8).tolist())
    p.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert np.array_equal(read_label(tmp_path / "p.png"), ids)


def test_read_instance_16bit(tmp_path):
    inst = np.array([[7, 26001, 26002], [24000, 24000, 33001]], dtype=np.uint16)
    Image.fromarray(inst).save(tmp_path / "i.png")
    assert Image.open(tmp_path / "i.png").mode.startswith("I")
    out = read_instance(tmp_path / "i.png")
    assert out.dtype == np.int64 and out.tolist() == inst.tolist()


def test_label_given_as_rgb_or_jpeg(tmp_path):
    ids = np.random.default_rng(0).integers(0, 8, (8, 8), dtype=np.uint8)
    Image.fromarray(ids).convert("RGB").save(tmp_path / "grey_rgb.png")
    with pytest.raises(DataError, match=r"grey_rgb\.png.*RGB") as e:
        read_label(tmp_path / "grey_rgb.png")
    assert "single-channel" in e.value.hint and "convert('L')" in e.value.hint
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "colour.png")
    with pytest.raises(DataError, match="colour.png") as e:
        read_instance(tmp_path / "colour.png")
    assert "decolorize" in e.value.hint
    Image.fromarray(ids).save(tmp_path / "lossy.jpg")
    with pytest.raises(DataError, match=r"lossy\.jpg.*JPEG"):
        read_label(tmp_path / "lossy.jpg")


def test_load_input(tmp_path):
    ids = np.array([[0, 1, 2], [2, 1, 255]], dtype=np.uint8)
    Image.fromarray(ids).save(tmp_path / "lab.png")
    t = load_input(tmp_path / "lab.png", "label", label_nc=3, contain_dontcare=True)
    assert t.dtype == torch.int64 and t.shape == (1, 2, 3) and t.tolist() == [ids.tolist()]
    with pytest.raises(DataError, match=r"lab\.png.*label id 255 >= label_nc 3"):
        load_input(tmp_path / "lab.png", "label", label_nc=3)
    pal = [[9, 9, 9], [200, 0, 0], [0, 0, 200]]
    Image.fromarray(np.asarray(pal, np.uint8)[ids.clip(0, 2)]).save(tmp_path / "drawn.png")
    t = load_input(tmp_path / "drawn.png", "label", label_nc=3, palette=pal)
    assert t[0].tolist() == ids.clip(0, 2).tolist()
    arr = _rgb(6, 5)
    Image.fromarray(arr).save(tmp_path / "photo.png")
    x = load_input(tmp_path / "photo.png", "image")
    assert x.dtype == torch.float32 and x.shape == (3, 6, 5)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose((x + 1) * 127.5, torch.from_numpy(arr).permute(2, 0, 1).float(), atol=1e-3)
    assert load_input(tmp_path / "photo.png", "image", input_nc=1).shape == (1, 6, 5)
