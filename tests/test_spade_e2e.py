"""SPADE end to end on synthetic data (with and without the VAE) and on the COCO-Stuff samples."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pixtrans
from pixtrans.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    *("--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.spade_nhidden=16", "--set", "model.z_dim=16"),
    *("--set", "train.progress=false", "--set", "train.log_every=1", "--set", "train.sample_every=0"),
]


def _train(config: str, data: Path, out: Path, steps: int, *extra: str) -> int:
    args = ["train", str(ROOT / "configs" / config), "--set", f"data.root={data}", "--set", f"train.steps={steps}"]
    return main([*args, "--out", str(out), *TINY, *extra])


def _translate(run: Path, label: Path, out: Path, *extra: str) -> tuple[np.ndarray, dict]:
    assert main(["translate", str(run), str(label), "--out", str(out), "--device", "cpu", *extra]) == 0
    img = Image.open(out / f"{label.stem}.png")
    return np.asarray(img.convert("RGB")), json.loads(img.info["pixtrans_style"])


def _losses(run: Path) -> list[dict]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("vae", [False, True])
def test_train_test_translate_styles(synth_root, tmp_path, vae):
    run = tmp_path / "run"
    config = "spade_synth_vae.yaml" if vae else "spade_synth.yaml"
    assert _train(config, synth_root, run, 3) == 0
    rows = _losses(run)
    want = {"G_GAN", "G_GAN_Feat", "D_real", "D_fake"} | ({"KLD"} if vae else set())
    assert want <= set(rows[-1]) and all(math.isfinite(float(rows[-1][k])) for k in want)

    assert main(["test", str(run), "--data", str(synth_root), "--out", str(tmp_path / "e"), "--device", "cpu"]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n"] == 4 and m["family"] == "spade" and 0 < m["psnr"] < 100 and -1 <= m["ssim"] <= 1

    label = sorted((synth_root / "test_label").iterdir())[0]
    photo = sorted((synth_root / "train_img").iterdir())[0]
    a, sa = _translate(run, label, tmp_path / "a", "--seed", "1")
    a2, _ = _translate(run, label, tmp_path / "a2", "--seed", "1")
    b, sb = _translate(run, label, tmp_path / "b", "--seed", "2")
    r, sr = _translate(run, label, tmp_path / "r", "--reference", str(photo)) if vae else (None, None)
    assert a.shape == (64, 64, 3) and np.array_equal(a, a2)  # the same seed reproduces the image
    if vae:
        assert sa == {"seed": 1} and sb == {"seed": 2} and sr == {"reference": photo.name}
        assert not np.array_equal(a, b) and not np.array_equal(a, r)
        # no seed: one is drawn and recorded, and it reproduces the output (Python API)
        t = pixtrans.load(run, device="cpu")
        out = t.translate(str(label))
        seed = json.loads(out.info["pixtrans_style"])["seed"]
        assert np.array_equal(np.asarray(out), np.asarray(t.translate(str(label), style={"seed": seed})))
    else:
        assert sa == sb == {} and np.array_equal(a, b)  # deterministic without the VAE
        assert main(["translate", str(run), str(label), "--out", str(tmp_path / "x"), "--reference", str(photo)]) != 0


@pytest.mark.slow
def test_coco_stuff_samples_train(shared_data, tmp_path):
    root = shared_data / "coco_stuff_samples"
    if not root.is_dir():
        pytest.skip("coco_stuff_samples absent")
    run = tmp_path / "coco"
    extra = [
        *("--set", "data.load_size=72", "--set", "data.crop_size=64", "--set", "data.batch_size=2"),
        *("--set", "model.no_vgg_loss=true", "--set", "train.save_every=0"),
    ]
    assert _train("spade_coco.yaml", root, run, 2, *extra) == 0
    rows = _losses(run)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("G_GAN", "G_GAN_Feat", "D_real", "D_fake"))
    t = pixtrans.load(run, device="cpu")
    assert t.model.in_channels == 184  # 182 classes + don't-care + instance boundary
    label = sorted((root / "val_label").iterdir())[0]
    out = t.translate(str(label), instances=str(root / "val_inst" / label.name))
    assert out.size == Image.open(label).size  # padded to a multiple of 32 and cropped back
