"""MSG U-Net end to end on synthetic data: train, test (metrics.json), translate all scales, ablation, gradients."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import pixtrans
from pixtrans.cli import main
from pixtrans.eval.ablation import degrade

ROOT = Path(__file__).resolve().parents[1]
CFG = str(ROOT / "configs" / "msg_unet_synth.yaml")
TINY = ["model.ngf=8", "model.ndf=8", "train.progress=false", "train.log_every=1", "train.sample_every=0"]


def _sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def test_degrade_keeps_ids_and_makes_blocks():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 7, (1, 1, 16, 16), generator=g)
    low = degrade(ids, 4)
    assert low.dtype == ids.dtype and low.shape == ids.shape
    assert set(low.unique().tolist()) <= set(ids.unique().tolist())
    blocks = low.view(1, 1, 4, 4, 4, 4)
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))  # constant 4x4 blocks
    img = torch.rand(1, 3, 8, 8)
    assert torch.allclose(degrade(img, 8), img.mean((2, 3), keepdim=True).expand_as(img))
    assert degrade(ids, 1) is ids


@pytest.mark.slow
def test_train_test_translate_ablation(synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", CFG, "--out", str(run), *_sets(f"data.root={synth_root}", "train.steps=3", *TINY)]) == 0

    # test: metrics.json with the contract keys
    assert main(["test", str(run), "--data", str(synth_root), "--out", str(tmp_path / "test")]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert metrics["n"] == 4 and 0 < metrics["ssim"] <= 1 and math.isfinite(metrics["psnr"])
    assert main(["test", str(run), "--out", str(tmp_path / "t2"), "--paper-test"]) == 2  # a pix2pix-only option
    assert "pix2pix's test protocol" in capsys.readouterr().err

    # translate: full resolution by default, every scale on request
    t = pixtrans.load(run, device="cpu")
    label = next((synth_root / "test_label").iterdir())
    assert t.translate(label).size == (64, 64)
    assert [im.size for im in t.translate(label, all_scales=True)] == [(16, 16), (32, 32), (64, 64)]

    # ablation: input resolution x output resolution SSIM table as CSV + heat map
    out = tmp_path / "ablation"
    assert main(["ablation", str(run), "--data", str(synth_root), "--out", str(out)]) == 0
    with open(out / "ablation.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["input \\ output", "16x16", "32x32", "64x64"]
    assert [r[0] for r in rows[1:]] == ["16x16", "32x32", "64x64"]
    assert all(0 < float(v) <= 1 for r in rows[1:] for v in r[1:])
    assert (out / "ablation.png").stat().st_size > 1000
    assert json.loads((out / "ablation.json").read_text())["n"] == 4


@pytest.mark.slow
def test_gradient_study(synth_root, tmp_path):
    out = tmp_path / "grad"
    args = ["gradstudy", CFG, "--out", str(out), "--steps", "3", "--collect", "2", "--layers", "2"]
    assert main([*args, *_sets(f"data.root={synth_root}", *TINY)]) == 0
    summary = json.loads((out / "gradients.json").read_text())
    assert summary["first_layers"] == ["stem.0", "stem.1"]
    for variant in ("with_outputs", "without_outputs"):
        s = summary["variants"][variant]
        assert s["first_layers"]["n"] == 2 * (9 * 8 * 9 + 8 * 8 * 9)  # 2 collected steps of the two stem convs
        assert s["first_layers"]["median"] > 0
        assert set(s["per_layer"]) == set(summary["layers"])
        assert (out / variant / "latest").is_file()
    assert (out / "gradients.png").stat().st_size > 1000
    # the runs really differ: one has three output branches, the other one
    cfg_without = (out / "without_outputs" / "config.yaml").read_text()
    assert "intermediate_outputs: false" in cfg_without


def test_ablation_and_gradstudy_refuse_other_families(synth_root, tmp_path):
    from pixtrans.config import load_config
    from pixtrans.errors import ConfigError
    from pixtrans.train.gradstudy import gradient_study

    cfg = load_config(ROOT / "configs" / "pix2pix_synth.yaml", [f"data.root={synth_root}"])
    with pytest.raises(ConfigError, match="needs an MSG U-Net"):
        gradient_study(cfg, tmp_path / "g", steps=2, collect=1)
    cfg = load_config(CFG, [f"data.root={synth_root}"])
    with pytest.raises(ConfigError, match="collect"):
        gradient_study(cfg, tmp_path / "g", steps=2, collect=5)
