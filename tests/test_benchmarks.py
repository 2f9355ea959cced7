"""The benchmark scripts run end to end on tiny budgets (their numbers live in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_equal_budget_trains_each_seed_within_budget_and_averages(tmp_path):
    out = tmp_path / "eb"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "equal_budget.py"), "--out", str(out), "--n", "2"]
    cmd += ["--n-test", "2", "--budget", "3", "--families", "msg_unet", "--seeds", "0", "1"]
    cmd += ["--set", "msg_unet:model.ngf=8", "--set", "msg_unet:model.ndf=8"]
    cmd += ["--set", "pix2pix:model.ngf=8", "--set", "pix2pix:model.ndf=8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| msg_unet |" in res.stdout
    summary = json.loads((out / "equal_budget.json").read_text())
    row = summary["results"]["msg_unet"]
    assert set(row["seeds"]) == {"0", "1"}
    for seed in ("0", "1"):
        r = row["seeds"][seed]
        assert r["steps"] >= 1 and r["cpu_s"] >= 3 and 0 < r["ssim"] <= 1 and r["n"] == 2
        assert (out / "runs" / f"msg_unet_s{seed}" / "latest").is_file()
    assert row["ssim"] == pytest.approx((row["seeds"]["0"]["ssim"] + row["seeds"]["1"]["ssim"]) / 2)
    # the learning rate is ~0 at the end of the budget (constant, then linear decay in budget time)
    last = (out / "runs" / "msg_unet_s0" / "log.csv").read_text().splitlines()[-1].split(",")
    assert float(last[3]) < 1e-6

    # --keep: another family joins the earlier results; other settings are refused
    cmd[cmd.index("msg_unet")] = "pix2pix"
    res = subprocess.run([*cmd, "--keep"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "equal_budget.json").read_text())
    assert list(summary["results"]) == ["pix2pix", "msg_unet"] and "msg_above_pix2pix" in summary["verdict"]
    assert summary["results"]["msg_unet"] == row
    cmd[cmd.index("--budget") + 1] = "4"
    res = subprocess.run([*cmd, "--keep"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode != 0 and "other budget" in res.stderr


@pytest.mark.slow
def test_real_photos_builds_tasks_split_by_photo_and_reports_every_row(tmp_path, shared_data):
    out = tmp_path / "rp"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "real_photos.py"), "--shared", str(shared_data)]
    cmd += ["--out", str(out), "--tasks", "blur", "--families", "pix2pix", "msg_unet", "--budget", "2"]
    for fam in ("pix2pix", "msg_unet"):
        cmd += ["--set", f"{fam}:model.ngf=8", "--set", f"{fam}:model.ndf=8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    train = {p.stem for p in (out / "data" / "blur" / "train").glob("*.png")}
    test = {p.stem for p in (out / "data" / "blur" / "test").glob("*.png")}
    assert train and test and not train & test  # split by photo
    summary = json.loads((out / "real_photos.json").read_text())
    task = summary["results"]["blur"]
    assert set(task["rows"]) == {"pix2pix", "pix2pix, tested as official test.py", "msg_unet"}
    assert 0 < task["baseline"]["ssim"] < 1 and task["baseline"]["n"] == len(test)
    assert all(0 < r["ssim"] <= 1 and r["steps"] >= 1 for r in task["rows"].values())
    assert "msg_unet >= pix2pix SSIM" in task["verdict"]
    assert "| copy the input |" in res.stdout
