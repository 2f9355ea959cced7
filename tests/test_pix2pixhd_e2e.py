"""pix2pixHD end to end on synthetic data: stage 1 (global) -> stage 2 (local) -> test -> clusters -> styles;
and a few steps on the Cityscapes samples in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import pixtrans
from pixtrans.checkpoints import resolve_checkpoint
from pixtrans.cli import main

ROOT = Path(__file__).resolve().parents[1]
CFG1 = str(ROOT / "configs" / "pix2pixhd_synth.yaml")
CFG2 = str(ROOT / "configs" / "pix2pixhd_synth_local.yaml")
CFG_CITY = str(ROOT / "configs" / "pix2pixhd_cityscapes.yaml")
CAR = 5  # synthetic class id of cars (several paint colours per instance)
TINY = [
    *("--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.nef=8", "--set", "model.n_blocks_global=1"),
    *("--set", "model.n_blocks_local=1", "--set", "train.progress=false", "--set", "train.log_every=1"),
    *("--set", "train.sample_every=0", "--set", "train.save_every=0"),
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run) / "model.safetensors"))


def _car_colour(img: Image.Image, mask: np.ndarray) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)[mask].mean(0)


@pytest.mark.slow
def test_global_then_local_test_clusters_and_styles(synth_root, tmp_path):
    r1, r2 = tmp_path / "stage1", tmp_path / "stage2"
    data = ["--set", f"data.root={synth_root}"]
    # stage 1: global generator + feature encoder (a short run: features only start to matter)
    args = ["train", CFG1, *data, *TINY, "--set", "train.steps=120", "--set", "train.lr_policy=constant"]
    assert main([*args, "--out", str(r1)]) == 0
    # stage 2 from stage 1 in one command; the global part stays frozen for all of its (few) steps
    stage2 = [*data, *TINY, "--set", "data.load_size=64", "--set", "data.crop_size=64", "--set", "train.steps=3"]
    assert main(["train", CFG2, *stage2, "--set", f"train.init_from={r1}", "--out", str(r2)]) == 0
    w1, w2 = _weights(r1), _weights(r2)
    g_global = [k for k in w2 if k.startswith("G.model.")]
    assert g_global and all(torch.equal(w1[k], w2[k]) for k in g_global)  # loaded and frozen
    assert any(k.startswith("G.model1_") for k in w2) and not any(k.startswith("G.model1_") for k in w1)
    assert not any(torch.equal(w1[k], w2[k]) for k in w2 if k.startswith("E.") and k.endswith("weight"))

    # test: images, report and metrics.json (before clusters: each photo's own encoded features)
    assert main(["test", str(r2), "--data", str(synth_root), "--out", str(tmp_path / "test")]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert metrics["n"] == 4 and 0 < metrics["psnr"] < 100 and -1 <= metrics["ssim"] <= 1 and metrics["vif"] >= 0
    assert metrics["family"] == "pix2pixhd" and (tmp_path / "test" / "index.html").is_file()

    # clusters: K-means per class stored in the checkpoint
    assert main(["features", str(r1), "--data", str(synth_root), "--k", "10"]) == 0
    meta = json.loads((resolve_checkpoint(r1) / "meta.json").read_text())
    centres = np.asarray(meta["family_meta"]["clusters"][str(CAR)])
    assert 2 <= len(centres) <= 10 and centres.shape[1] == 3

    # the same label map with the two most different car clusters -> measurably different cars; the change is
    # concentrated on the cars (only their features differ; G's receptive field spreads a little of it around)
    t = pixtrans.load(r1)
    label = next(p for p in sorted((synth_root / "test_label").iterdir()) if (np.array(Image.open(p)) == CAR).any())
    inst = synth_root / "test_inst" / label.name
    cars = np.array(Image.open(label)) == CAR
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    a, b = np.unravel_index(dist.argmax(), dist.shape)
    assert dist[a, b] > 0.05
    out_a = t.translate(label, instances=inst, style={"clusters": {CAR: int(a)}})
    out_b = t.translate(label, instances=inst, style={"clusters": {CAR: int(b)}})
    diff = np.abs(np.asarray(out_a, dtype=np.float64) - np.asarray(out_b, dtype=np.float64)).mean(-1)
    on_cars, elsewhere = diff[cars].mean(), diff[~cars].mean()
    assert on_cars > 2.0 and on_cars > 1.5 * elsewhere, f"cars change by {on_cars:.2f} / 255, the rest {elsewhere:.2f}"
    colour = np.abs(_car_colour(out_a, cars) - _car_colour(out_b, cars)).max()
    assert colour > 0.5, f"mean car colours differ by only {colour:.2f} / 255"
    style = json.loads(out_a.info["pixtrans_style"])
    assert style["clusters"][str(CAR)] == int(a)
    # the recorded style reproduces the output exactly
    again = t.translate(label, instances=inst, style=style)
    assert np.array_equal(np.asarray(again), np.asarray(out_a))
    # and the CLI writes it into the PNG
    out = tmp_path / "styled"
    assert (
        main(
            [
                "translate",
                str(r1),
                str(label),
                "--instances",
                str(inst.parent),
                "--out",
                str(out),
                "--style",
                json.dumps({"clusters": {str(CAR): int(b)}}),
            ]
        )
        == 0
    )
    written = Image.open(out / label.name)
    assert json.loads(written.info["pixtrans_style"])["clusters"][str(CAR)] == int(b)
    assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(out_b))


@pytest.mark.slow
def test_cityscapes_samples_train_with_instances(shared_data, tmp_path):
    root = shared_data / "cityscapes_samples"
    if not (root / "train_label").is_dir():
        pytest.skip("no Cityscapes samples in ../shared/data")
    run = tmp_path / "city"
    args = ["train", CFG_CITY, "--set", f"data.root={root}", *TINY, "--set", "train.steps=2"]
    args += ["--set", "data.load_size=256", "--set", "data.crop_size=256", "--set", "model.no_vgg_loss=true"]
    assert main([*args, "--out", str(run)]) == 0
    ck = resolve_checkpoint(run)
    weights = load_file(str(ck / "model.safetensors"))
    assert weights["G.model.1.weight"].shape[1] == 36  # 35 labels + instance boundary map
    rows = (run / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and "G_GAN_Feat" in rows[0] and "nan" not in rows[-1]
    # inference at the training scale: 256x128 from a full-size test label map + instances
    t = pixtrans.load(run)
    label = sorted((root / "test_label").iterdir())[0]
    inst = root / "test_inst" / label.name.replace("labelIds", "instanceIds")
    ids = np.array(Image.open(label).resize((256, 128), Image.NEAREST))
    inst_ids = np.array(Image.open(inst).resize((256, 128), Image.NEAREST)).astype(np.int64)
    out = t.translate(ids, instances=inst_ids)
    assert out.size == (256, 128)
