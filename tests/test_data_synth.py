"""The synthetic street-scene generator: deterministic, consistent label/instance/photo, several styles."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pixtrans.data.synth import generate


def _arr(p):
    return np.array(Image.open(p))


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    a = generate(tmp_path / "a", n=3, n_test=1, size=32, seed=5)
    b = generate(tmp_path / "b", n=3, n_test=1, size=32, seed=5)
    c = generate(tmp_path / "c", n=3, n_test=1, size=32, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 3 * 4 + 2  # 4 scenes x (label, inst, img) + classes.json + styles.json
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "train_img/train_00000.png").read_bytes() != (c / "train_img/train_00000.png").read_bytes()


def test_files_modes_and_consistency(synth_root):
    meta = json.loads((synth_root / "classes.json").read_text())
    assert meta["label_nc"] == len(meta["names"]) == len(meta["colors"]) and meta["seed"] == 1
    assert sorted(p.name for p in (synth_root / "train_label").iterdir())[0] == "train_00000.png"
    assert len(list((synth_root / "test_img").iterdir())) == 4
    n_things = 0
    for p in sorted((synth_root / "train_label").iterdir()):
        lab_im, inst_im = Image.open(p), Image.open(synth_root / "train_inst" / p.name)
        img_im = Image.open(synth_root / "train_img" / p.name)
        assert (lab_im.mode, img_im.mode, lab_im.size, img_im.size) == ("L", "RGB", (64, 64), (64, 64))
        assert inst_im.mode.startswith("I;16")
        lab, inst = np.array(lab_im).astype(int), np.array(inst_im).astype(int)
        assert lab.max() < meta["label_nc"]
        thing = np.isin(lab, meta["things"])
        assert np.array_equal(inst[thing] // 1000, lab[thing]) and np.array_equal(inst[~thing], lab[~thing])
        n_things += len(np.unique(inst[thing]))
    assert n_things >= 8  # cars in every scene, numbered per class


def test_rectangular_size_and_aligned(tmp_path):
    out = generate(tmp_path, n=2, n_test=0, size=(48, 24), seed=0, aligned=True)
    assert _arr(out / "train_img/train_00001.png").shape == (24, 48, 3)
    ab = _arr(out / "aligned/train/train_00001.png")
    assert ab.shape == (24, 96, 3)
    meta = json.loads((out / "classes.json").read_text())
    lab = _arr(out / "train_label/train_00001.png")
    assert np.array_equal(ab[:, :48], np.asarray(meta["colors"], np.uint8)[lab])
    assert np.array_equal(ab[:, 48:], _arr(out / "train_img/train_00001.png"))
    assert meta["size"] == [48, 24]


def test_styles_vary_and_show_in_pixels(tmp_path):
    out = generate(tmp_path, n=24, n_test=0, size=48, seed=0)
    styles = json.loads((out / "styles.json").read_text())
    assert len({s["sky"] for s in styles.values()}) == 3
    assert len({s["road"] for s in styles.values()}) == 2
    assert len({c for s in styles.values() for c in s["car"]}) >= 4
    # sky style is visible: clear-day skies are bluer than sunsets
    blue = {0: [], 1: []}
    for name, s in styles.items():
        if s["sky"] in blue:
            lab, img = _arr(out / f"train_label/{name}.png"), _arr(out / f"train_img/{name}.png").astype(int)
            sky = img[lab == 0]
            blue[s["sky"]].append((sky[:, 2] - sky[:, 0]).mean())
    assert min(blue[0]) > max(blue[1])
