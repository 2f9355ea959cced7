"""Exact resume: with DataLoader workers, EMA and bf16 across an epoch boundary, and after kill -9 under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from conftest import PIX2PIX_CFG, TINY_PIX2PIX, child_env, tiny_config, torchrun_train
from safetensors.torch import load_file
from torch.utils.data import DataLoader, DistributedSampler

from pixtrans.checkpoints import resolve_checkpoint
from pixtrans.data.datasets import ItemKey, build_dataset
from pixtrans.train.trainer import Trainer, _Keys

TINY = [*TINY_PIX2PIX, "data.load_size=40", "data.color_jitter=0.5"]


def _cfg(root, *extra):
    return tiny_config(root, *extra, base=TINY)


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run) / "model.safetensors"))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_resume_is_bit_exact_with_workers_ema_bf16_across_an_epoch(synth_root, tmp_path):
    """8 items, batch 2: 4 steps per epoch. A run that crashes at step 5 (last checkpoint: step 3, mid-epoch)
    and resumes to step 7 ends with the weights, EMA weights and optimizer-visible state of a straight run."""
    extra = ["train.steps=7", "train.save_every=3", "data.num_workers=2", "data.batch_size=2"]
    extra += ["train.ema=0.9", "train.amp=bf16"]
    Trainer(_cfg(synth_root, *extra), tmp_path / "straight").fit()

    def crash_at_5(t: Trainer):
        if t.step == 5:
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(_cfg(synth_root, *extra), tmp_path / "crashed").fit(crash_at_5)
    assert resolve_checkpoint(tmp_path / "crashed").name == "step_0000003"
    resumed = Trainer(_cfg(synth_root, *extra), tmp_path / "crashed", resume=True)
    assert resumed.step == 3 and resumed.steps_per_epoch == 4
    resumed.fit()
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "crashed")
    assert any(k.startswith("ema.") for k in a)
    _assert_same(a, b)


def test_item_keys_make_the_stream_independent_of_workers_and_world_size(synth_root):
    """An item's augmentation is a function of (seed, epoch, index): 0 or 2 workers, 1 or 2 ranks, same tensors."""
    cfg = _cfg(synth_root, "data.batch_size=1")
    ds = build_dataset(cfg.data, "train", train=True)

    def items(world: int, rank: int, workers: int, skip: int = 0) -> dict[int, torch.Tensor]:
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
        keys = list(_Keys(sampler, epoch=1, seed=0, skip=skip))
        loader = DataLoader(ds, batch_size=1, sampler=keys, num_workers=workers)
        return {k.index: b["target"][0] for k, b in zip(keys, loader)}

    single = items(1, 0, 0)
    with_workers = items(1, 0, 2)
    two_ranks = {**items(2, 0, 2), **items(2, 1, 0)}
    skipped = items(1, 0, 0, skip=3)
    assert single.keys() == with_workers.keys() == two_ranks.keys() and len(single) == len(ds)
    for i in single:
        assert torch.equal(single[i], with_workers[i]) and torch.equal(single[i], two_ranks[i])
    for i in skipped:
        assert torch.equal(skipped[i], single[i])
    # another epoch draws other crops and flips
    assert any(not torch.equal(ds[ItemKey(i, 2, 0)]["target"], single[i]) for i in single)


@pytest.mark.slow
def test_bad_files_found_in_worker_processes_are_booked_in_the_trainer(synth_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    bad = sorted((root / "train_label").iterdir())[2]
    bad.write_bytes(b"not a png")
    t = Trainer(_cfg(root, "data.on_error=skip", "data.num_workers=2", "train.steps=8"), tmp_path / "r")
    t.fit()
    assert t.dataset.skipped == 1 and [p.path for p in t.dataset.problems] == [str(bad)]
    assert f"skipped 1 bad file(s): {bad}" in capsys.readouterr().out


def _torchrun(root, out, steps: int, *extra: str) -> list[str]:
    sets = [f"data.root={root}", f"train.steps={steps}", "train.save_every=4", "data.batch_size=2", *TINY]
    return torchrun_train(PIX2PIX_CFG, out, sets, *extra)


@pytest.mark.slow
def test_kill_9_under_torchrun_then_resume_equals_an_uninterrupted_run(synth_root, tmp_path):
    steps = 16
    # the uninterrupted run goes alongside the one that gets killed
    ref = subprocess.Popen(
        _torchrun(synth_root, tmp_path / "a", steps), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    run = tmp_path / "b"
    p = subprocess.Popen(
        _torchrun(synth_root, run, steps),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not (run / "latest").is_file():
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)  # torchrun and both ranks, no chance to save
    p.wait()
    killed_at = json.loads((resolve_checkpoint(run) / "meta.json").read_text())["step"]
    assert 0 < killed_at < steps
    p = subprocess.run(_torchrun(synth_root, run, steps, "--resume"), env=child_env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err[-3000:]
    _assert_same(_weights(tmp_path / "a"), _weights(run))
    # resuming on another world size works (per-rank batch kept, so the global batch halves; see the README)
    t = Trainer(_cfg(synth_root, f"train.steps={steps + 2}", "data.batch_size=2"), run, resume=True)
    assert t.world == 1 and t.step == steps
    t.fit()
    assert json.loads((resolve_checkpoint(run) / "meta.json").read_text())["step"] == steps + 2


@pytest.mark.slow
def test_validation_scores_what_pixtrans_load_translates(synth_root, tmp_path):
    """val_every scores the EMA generator through the translator: the logged PSNR is what a loaded model gets."""
    import pixtrans
    from pixtrans.eval.evaluate import evaluate_model

    cfg = _cfg(synth_root, "train.steps=2", "train.ema=0.5", "train.val_every=2", "train.val_items=2")
    ck = Trainer(cfg, tmp_path / "r").fit()
    logged = json.loads((ck / "meta.json").read_text())["metrics"]["psnr"]
    ema = evaluate_model(pixtrans.load(ck).model, cfg, max_items=2)["psnr"]
    live = evaluate_model(pixtrans.load(ck, use_ema=False).model, cfg, max_items=2)["psnr"]
    assert logged == pytest.approx(ema, abs=1e-6) and abs(live - ema) > 1e-4
