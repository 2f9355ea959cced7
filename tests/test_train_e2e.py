"""End to end with pix2pix on synthetic data: train, resume exactly, test, translate, bench, DDP, signals."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import child_env, torchrun_train
from PIL import Image
from safetensors.torch import load_file

import pixtrans
from pixtrans.checkpoints import resolve_checkpoint
from pixtrans.cli import main

ROOT = Path(__file__).resolve().parents[1]
CFG = str(ROOT / "configs" / "pix2pix_synth.yaml")
TINY = ["--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "train.progress=false", "--set", "train.log_every=1"]


def _train(data, out, steps, *extra):
    args = ["train", CFG, "--set", f"data.root={data}", "--set", f"train.steps={steps}", "--out", str(out), *TINY]
    return main([*args, *extra])


def _weights(run):
    return load_file(str(resolve_checkpoint(run) / "model.safetensors"))


def test_resume_continues_exactly(synth_root, tmp_path):
    # a constant lr so that the 3-step first leg has the same schedule as the straight 6-step run
    const = ("--set", "train.lr_policy=constant")
    assert _train(synth_root, tmp_path / "a", 6, *const) == 0
    assert _train(synth_root, tmp_path / "b", 3, *const) == 0
    assert _train(synth_root, tmp_path / "b", 6, *const, "--resume") == 0
    meta = json.loads((resolve_checkpoint(tmp_path / "b") / "meta.json").read_text())
    assert meta["step"] == 6 and meta["family"] == "pix2pix"
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)
    with open(tmp_path / "b" / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    # a second run into the same folder without --resume is refused
    assert _train(synth_root, tmp_path / "b", 6) == 2


def test_checkpoint_folder_layout_and_atomicity(synth_root, tmp_path):
    assert (
        _train(synth_root, tmp_path / "r", 4, "--set", "train.save_every=1", "--set", "train.keep_checkpoints=2") == 0
    )
    cks = sorted((tmp_path / "r" / "checkpoints").iterdir())
    assert [c.name for c in cks] == ["step_0000003", "step_0000004"]  # pruned, no temp folders left
    for f in ("config.yaml", "model.safetensors", "meta.json", "train_state.pt"):
        assert (cks[-1] / f).is_file()
    assert (tmp_path / "r" / "latest").read_text().strip() == "step_0000004"
    assert (tmp_path / "r" / "log.csv").is_file() and (tmp_path / "r" / "losses.png").is_file()
    assert list((tmp_path / "r" / "samples").glob("*.png"))


def test_test_translate_and_api(synth_root, tmp_path, capsys):
    run = tmp_path / "r"
    assert _train(synth_root, run, 3) == 0
    assert main(["test", str(run), "--data", str(synth_root), "--out", str(tmp_path / "e")]) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n"] == 4 and 0 < m["psnr"] < 100 and -1 <= m["ssim"] <= 1 and m["vif"] >= 0
    html = (tmp_path / "e" / "index.html").read_text()
    assert "_output.png" in html and "_target.png" in html
    # pix2pix's paper test protocol (per-image BN statistics, dropout on) gives other outputs
    assert main(["test", str(run), "--data", str(synth_root), "--out", str(tmp_path / "p"), "--paper-test"]) == 0
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["psnr"] != m["psnr"]
    label = sorted((synth_root / "test_label").iterdir())[0]
    assert main(["translate", str(run), str(label), "--out", str(tmp_path / "o")]) == 0
    out = Image.open(tmp_path / "o" / f"{label.stem}.png")
    assert out.size == Image.open(label).size and out.mode == "RGB"
    # any size: an odd-sized crop of a label map is padded to the network's multiple and cropped back
    t = pixtrans.load(run)
    ids = np.array(Image.open(label))[:45, :37]
    img = t.translate(ids)
    assert img.size == (37, 45)
    tiled = t.translate(np.array(Image.open(label)), tile=32)
    assert tiled.size == out.size


def test_bad_inputs_are_clear_errors(synth_root, tmp_path, capsys):
    run = tmp_path / "r"
    assert _train(synth_root, run, 1) == 0
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["translate", str(run), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "Traceback" not in err
    assert main(["train", CFG, "--set", "data.root=/nonexistent", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", CFG, "--set", "train.stepz=3", "--out", str(tmp_path / "y")]) == 2
    assert "train.stepz" in capsys.readouterr().err


def test_bench_json(capsys):
    assert main(["bench", "unet_128", "--size", "128x128", "--runs", "1", "--warmup", "0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("params", "gflops", "latency_s", "peak_mem_mb"):
        assert res[k] > 0
    assert res["params"] == 41_828_995  # official unet_128 (3->3, ngf 64)


@pytest.mark.slow
def test_torchrun_two_processes(synth_root, tmp_path):
    cmd = torchrun_train(CFG, tmp_path / "r2", [f"data.root={synth_root}", "train.steps=4"], *TINY)
    p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    meta = json.loads((resolve_checkpoint(tmp_path / "r2") / "meta.json").read_text())
    assert meta["step"] == 4
    assert len(list((tmp_path / "r2" / "checkpoints").iterdir())) == 1  # rank 0 alone writes


@pytest.mark.slow
def test_sigterm_saves_then_resume(synth_root, tmp_path):
    run = tmp_path / "r"
    cmd = [
        sys.executable,
        "-m",
        "pixtrans",
        "train",
        CFG,
        "--set",
        f"data.root={synth_root}",
        "--set",
        "train.steps=100000",
        "--out",
        str(run),
        *TINY,
    ]
    p = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) > 3):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2, err[-2000:]
    assert "--resume" in err
    step = json.loads((resolve_checkpoint(run) / "meta.json").read_text())["step"]
    assert step >= 3
    assert _train(synth_root, run, step + 2, "--resume") == 0
    assert json.loads((resolve_checkpoint(run) / "meta.json").read_text())["step"] == step + 2
