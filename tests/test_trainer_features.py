"""Trainer options: bf16 autocast on CPU, EMA, gradient clipping, validation, LR policies, dataset errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from pixtrans.checkpoints import resolve_checkpoint
from pixtrans.config import load_config
from pixtrans.errors import PixtransError
from pixtrans.train.schedules import make_scheduler
from pixtrans.train.trainer import Trainer, train


def _cfg(root, *extra):
    base = [f"data.root={root}", "model.ngf=8", "model.ndf=8", "train.progress=false", "train.log_every=1"]
    return load_config("configs/pix2pix_synth.yaml", base + list(extra))


def test_bf16_ema_clip_validation(synth_root, tmp_path):
    cfg = _cfg(
        synth_root,
        "train.steps=4",
        "train.amp=bf16",
        "train.ema=0.9",
        "train.grad_clip=1.0",
        "train.val_every=2",
        "train.val_items=2",
        "train.lr_policy=plateau",
    )
    ck = train(cfg, tmp_path / "r")
    w = load_file(str(ck / "model.safetensors"))
    ema = {k for k in w if k.startswith("ema.")}
    assert ema and {k[4:] for k in ema} == {k[2:] for k in w if k.startswith("G.")}
    # EMA weights differ from the raw ones after a few steps
    k = next(k for k in ema if k.endswith("weight") and w[k].dim() == 4)
    assert not torch.equal(w[k], w["G." + k[4:]])
    meta = json.loads((ck / "meta.json").read_text())
    assert meta["ema"] is True and 0 < meta["metrics"]["psnr"] < 100 and meta["metrics"]["step"] == 4
    rows = list(csv.reader((tmp_path / "r" / "val.csv").read_text().splitlines()))
    assert [int(r[0]) for r in rows] == [2, 4]


def test_fp16_on_cpu_is_refused(synth_root, tmp_path):
    with pytest.raises(PixtransError, match="fp16"):
        Trainer(_cfg(synth_root, "train.amp=fp16", "train.device=cpu"), tmp_path / "r")


def test_empty_dataset_is_clear(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(PixtransError, match=str(tmp_path / "d")):
        Trainer(_cfg(tmp_path / "d"), tmp_path / "r")


@pytest.mark.parametrize(
    "policy, expect",
    [
        ("linear", [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]),
        ("step", [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01]),
        ("constant", [1] * 10),
    ],
)
def test_lr_policies(policy, expect):
    cfg = load_config(
        "configs/pix2pix_synth.yaml",
        [f"train.lr_policy={policy}", "train.steps=10", "train.lr_step_epochs=2", "train.lr=1.0"],
    )
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler(opt, cfg.train, steps_per_epoch=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expect)


def test_training_lowers_the_loss(synth_root, tmp_path):
    """A tiny overfit run: the L1 term of the last steps is clearly below the first steps'."""
    cfg = _cfg(
        synth_root, "train.steps=40", "data.max_items=2", "train.lr_policy=constant", "train.lr=1e-3", "model.ngf=16"
    )
    train(cfg, tmp_path / "r")
    rows = list(csv.DictReader((tmp_path / "r" / "log.csv").read_text().splitlines()))
    first = sum(float(r["G_L1"]) for r in rows[:5]) / 5
    last = sum(float(r["G_L1"]) for r in rows[-5:]) / 5
    assert last < 0.8 * first
    assert resolve_checkpoint(tmp_path / "r").name == "step_0000040"


def test_fit_callback_runs_every_step_and_can_end_training(synth_root, tmp_path):
    cfg = _cfg(synth_root, "train.steps=10", "train.log_every=4", "train.save_every=3")
    trainer = Trainer(cfg, tmp_path / "r")
    seen: list[int] = []

    def after_step(t: Trainer) -> bool:
        seen.append(t.step)
        return t.step == 3  # ends on a step that also has a periodic checkpoint

    ck = trainer.fit(after_step)
    assert seen == [1, 2, 3] and trainer.step == 3
    assert ck == resolve_checkpoint(tmp_path / "r") and ck.name == "step_0000003"
    rows = list(csv.DictReader((tmp_path / "r" / "log.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [3]  # the partial logging window is written
