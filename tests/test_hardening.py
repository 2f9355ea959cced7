"""Hardening (issue 13): no silent wrong results, one-line errors, self-healing run folders.

Property tests (Hypothesis) fuzz config parsing and image / label decoding; the rest are targeted cases: resume with
changed hyper-parameters, the divergence guard, corrupt and orphaned checkpoint files, kill -9 during a save.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import PIX2PIX_CFG as CFG
from conftest import TINY_PIX2PIX as TINY
from conftest import tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save_file

import pixtrans
from pixtrans import checkpoints
from pixtrans.checkpoints import clean_orphans, load_train_state, resolve_checkpoint, torch_load_safely
from pixtrans.cli import main
from pixtrans.config import config_from_dict, config_reference, load_config
from pixtrans.data.io import read_label, read_rgb
from pixtrans.errors import CheckpointError, ConfigError, DataError, PixtransError
from pixtrans.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tiny_run(synth_root, tmp_path_factory) -> Path:
    """A 4-step pix2pix run with checkpoints at steps 2 and 4 (copy it before damaging it)."""
    run = tmp_path_factory.mktemp("hardening") / "run"
    Trainer(tiny_config(synth_root, "train.steps=4", "train.save_every=2"), run).fit()
    return run


def _copy(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst)
    return dst


# ---------------------------------------------------------------------------------------------- config (class 1, 4)
def test_config_reference_is_current():
    doc = (ROOT / "docs" / "CONFIG.md").read_text()
    assert doc == config_reference(), "docs/CONFIG.md is stale: run `pixtrans config-reference > docs/CONFIG.md`"
    assert "docs/CONFIG.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("train.lr", "0", "lr"),
        ("train.lr", "-1e-4", "lr"),
        ("train.lr", ".nan", "train.lr"),
        ("train.lr_D", "0", "lr_D"),
        ("train.beta1", "1.0", "beta1"),
        ("train.beta2", "-0.1", "beta2"),
        ("train.save_every", "-1", "save_every"),
        ("train.log_every", "-5", "log_every"),
        ("train.keep_checkpoints", "0", "keep_checkpoints"),
        ("train.device", "gpu", "device"),
        ("train.device", "cuda:x", "device"),
        ("data.num_workers", "-1", "num_workers"),
        ("data.crop_size", "64", "crop_size"),  # load_size is 32 with resize_and_crop
        ("data.batch_size", "0", "batch_size"),
    ],
)
def test_invalid_values_and_relations_are_one_line_errors_naming_the_key(key, value, named):
    with pytest.raises(ConfigError) as err:
        load_config(CFG, [*TINY, f"{key}={value}"])
    msg = str(err.value)
    assert named in msg and "\n" not in msg, msg
    assert key.split(".")[0] in msg


def test_crop_larger_than_load_is_refused_the_same_for_train_and_test():
    for prep in ("resize_and_crop", "scale_width_and_crop"):
        with pytest.raises(ConfigError, match="crop_size"):
            config_from_dict({"family": "pix2pix", "data": {"preprocess": prep, "load_size": 32, "crop_size": 64}})
    # modes that do not crop a resized image do not need load_size >= crop_size
    for prep in ("crop", "scale_width", "none"):
        config_from_dict({"family": "pix2pix", "data": {"preprocess": prep, "load_size": 32, "crop_size": 64}})


@pytest.mark.parametrize(
    "raw, suggestion",
    [
        ({"train": {"stpes": 3}}, "'steps'"),
        ({"trian": {}}, "'train'"),
        ({"data": {"crop_sise": 3}}, "'crop_size'"),
        ({"model": {"ngff": 8}}, "'ngf'"),
        ({"model": {"init": "normal", "lamda_L1": 1}}, "'lambda_L1'"),
    ],
)
def test_unknown_keys_suggest_the_closest_ones(raw, suggestion):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"family": "pix2pix", **raw}, "x.yaml")
    assert f"did you mean {suggestion}" in str(err.value) and "docs/CONFIG.md" in str(err.value)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)
_train_keys = st.sampled_from(["steps", "lr", "lr_D", "beta1", "beta2", "save_every", "device", "ema", "lr_policy"])
_data_keys = st.sampled_from(["load_size", "crop_size", "num_workers", "batch_size", "preprocess", "label_nc"])


@FUZZ
@given(
    family=st.one_of(st.just("pix2pix"), st.just("spade"), _scalars),
    train=st.dictionaries(st.one_of(_train_keys, st.text(max_size=6)), _scalars, max_size=4),
    data=st.dictionaries(_data_keys, _scalars, max_size=4),
)
def test_config_parsing_never_fails_other_than_with_a_config_error(family, train, data):
    raw = {"family": family, "train": train, "data": data}
    try:
        cfg = config_from_dict(raw, "fuzz.yaml")
    except ConfigError as err:
        assert str(err).startswith(("invalid config fuzz.yaml", "family: unknown model family"))
        return
    t, d = cfg.train, cfg.data
    assert t.lr > 0 and (t.lr_D is None or t.lr_D > 0) and 0 <= t.beta1 < 1 and 0 <= t.beta2 < 1
    assert t.save_every >= 0 and d.num_workers >= 0 and d.batch_size >= 1
    assert not (d.preprocess == "resize_and_crop" and d.crop_size > d.load_size)
    # what is valid survives the trip through YAML unchanged (a run's config.yaml)
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg


@FUZZ
@given(text=st.one_of(st.text(max_size=60), st.binary(max_size=60)))
def test_config_files_fuzzed(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    with contextlib.suppress(ConfigError):  # one line; anything else escaping is a bug
        load_config(path)
    for bad in ("family: pix2pix\ntrain:\n  lr: [\n", "family: [pix2pix]\n", "family: pix2pix\ntrain:\n\tlr: 1\n"):
        path.write_text(bad)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert "\n" not in str(err.value)


@FUZZ
@given(st.lists(st.text(alphabet="abcxyz._=019-{}[]: ", max_size=20), max_size=3))
def test_set_overrides_fuzzed(items):
    with contextlib.suppress(ConfigError):  # anything else escaping is a bug
        load_config(CFG, items)


@FUZZ
@given(
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    prep=st.sampled_from(["resize_and_crop", "scale_width_and_crop", "crop", "scale_width", "none"]),
    load=st.integers(1, 300),
    crop=st.integers(1, 300),
    seed=st.integers(0, 2**16),
)
def test_transform_plans_of_valid_configs_crop_inside_and_train_like_test(w, h, prep, load, crop, seed):
    from pixtrans.data.transforms import plan

    try:
        d = config_from_dict({"family": "pix2pix", "data": {"preprocess": prep, "load_size": load, "crop_size": crop}})
    except ConfigError:
        assert prep.endswith("crop") and prep != "crop" and crop > load
        return
    gen = torch.Generator().manual_seed(seed)
    tr = plan(w, h, prep, d.data.load_size, d.data.crop_size, True, True, 0.5, gen)
    te = plan(w, h, prep, d.data.load_size, d.data.crop_size, False, True, 0.5)
    for p in (tr, te):
        assert min(p.size) >= 1
        if p.crop is not None:
            x, y, cw, ch = p.crop
            assert min(x, y) >= 0 and x + cw <= p.size[0] and y + ch <= p.size[1]
    if prep in ("resize_and_crop", "crop"):  # the network sees the same size in training and in test
        te_size = te.crop[2:] if te.crop else te.size
        assert tr.crop[2:] == tuple(te_size) == (crop, crop)


# ---------------------------------------------------------------------------------------------- labels (class 1)
_ids = st.integers(1, 12).flatmap(
    lambda h: st.integers(1, 12).flatmap(
        lambda w: st.lists(st.integers(0, 255), min_size=h * w, max_size=h * w).map(
            lambda v: np.array(v, dtype=np.uint8).reshape(h, w)
        )
    )
)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@FUZZ
@given(ids=_ids, kind=st.sampled_from(["L-PNG", "P-PNG", "I16-PNG", "L-BMP", "L-TIFF", "P-BMP"]))
def test_lossless_label_maps_keep_every_id(tmp_path, ids, kind):
    mode, fmt = kind.split("-")
    if mode == "P":
        im = Image.fromarray(ids, "L").convert("P")  # indices = ids, a scrambled palette that must not matter
        im.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
        im.frombytes(ids.tobytes())
    elif mode == "I16":
        im = Image.fromarray(ids.astype(np.uint16) * 257)
    else:
        im = Image.fromarray(ids, "L")
    path = tmp_path / f"label.{fmt.lower()}"
    path.write_bytes(_encode(im, fmt))
    want = ids.astype(np.int64) * (257 if mode == "I16" else 1)
    np.testing.assert_array_equal(read_label(path), want)


@FUZZ
@given(ids=_ids, fmt=st.sampled_from(["JPEG", "GIF", "WEBP"]), ext=st.sampled_from([".png", ".bmp", ".jpg", ".gif"]))
def test_label_formats_that_can_change_ids_are_refused_whatever_the_name(tmp_path, ids, fmt, ext):
    im = Image.fromarray(ids, "L")
    if fmt == "GIF":
        im = im.convert("P")
    path = tmp_path / f"label{ext}"
    path.write_bytes(_encode(im, fmt))
    with pytest.raises(DataError, match=r"(lossy|index-preserving).*PNG"):
        read_label(path)


@FUZZ
@given(data=st.binary(max_size=300), ext=st.sampled_from([".png", ".jpg", ".tif", ".bmp"]))
def test_garbage_files_are_data_errors(tmp_path, data, ext):
    path = tmp_path / f"junk{ext}"
    path.write_bytes(data)
    for reader in (read_label, read_rgb):
        with pytest.raises(DataError):
            reader(path)


@FUZZ
@given(
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    mode=st.sampled_from(["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"]),
    fmt=st.sampled_from(["PNG", "TIFF", "BMP", "JPEG", "WEBP", "GIF"]),
)
def test_any_mode_and_format_decodes_or_is_a_data_error(tmp_path, size, mode, fmt):
    im = Image.new(mode, size)
    try:
        data = _encode(im, fmt)
    except (OSError, ValueError, KeyError):
        return  # PIL cannot write that combination
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for reader in (read_label, read_rgb):
        try:
            out = reader(path)
        except DataError:
            continue
        assert out.shape[:2] == (size[1], size[0])


def test_dangling_symlink_is_reported_as_such(tmp_path):
    link = tmp_path / "a.png"
    link.symlink_to(tmp_path / "gone.png")
    with pytest.raises(DataError, match="dangling symlink"):
        read_label(link)


def test_dataset_names_a_dangling_symlink_not_a_missing_partner(synth_root, tmp_path):
    from pixtrans.data.datasets import check_dataset

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    photo = sorted((root / "train_img").iterdir())[0]
    photo.unlink()
    photo.symlink_to(tmp_path / "nowhere.png")
    report = check_dataset(tiny_config(root).data)
    problems = [p["problem"] for r in report["splits"].values() for p in r["problems"]]
    assert any("dangling symlink" in p for p in problems), problems
    assert not any("missing partner" in p for p in problems), problems


# ---------------------------------------------------------------------------------------------- pickles (class 5)
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_pickles_are_refused_as_such_without_torch_advice(tmp_path):
    torch.save({"w": torch.zeros(1), "x": _Evil()}, tmp_path / "zip.pt")
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(_Evil()))
    for f in ("zip.pt", "raw.pt"):
        with pytest.raises(CheckpointError) as err:
            torch_load_safely(tmp_path / f, "a pixtrans training state")
        msg = str(err.value)
        assert "refused" in msg and "malicious" in msg and "weights_only" not in msg and "\n" not in msg
    (tmp_path / "junk.pt").write_bytes(b"hello, not torch")
    with pytest.raises(CheckpointError, match="not a PyTorch file"):
        torch_load_safely(tmp_path / "junk.pt", "x")


def test_import_refuses_a_malicious_pth_as_such(tmp_path, capsys):
    torch.save({"model.1.weight": torch.zeros(1), "x": _Evil()}, tmp_path / "latest_net_G.pth")
    assert main(["import", "pix2pix", str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "imp")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "weights_only" not in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- run folders (class 3)
def test_orphans_of_a_killed_save_are_cleaned_and_the_only_copy_restored(tmp_path):
    root = tmp_path / "checkpoints"
    for name in ("step_0000004", ".tmp_step_0000006_abc", ".old_step_0000004_11", ".old_step_0000002_12"):
        (root / name).mkdir(parents=True)
        (root / name / "model.safetensors").write_bytes(b"x")
    (tmp_path / ".latest.k2j3").write_text("step_0000006\n")
    (root / "step_0000004" / ".meta.json.x1").write_text("{}")
    done = clean_orphans(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["step_0000002", "step_0000004"]  # .old_ of a missing step
    assert not list(tmp_path.glob(".latest.*")) and not list((root / "step_0000004").glob(".meta*"))
    assert len(done) == 5


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(tiny_run, tmp_path, monkeypatch):
    run = _copy(tiny_run, tmp_path / "run")
    ck, cfg, weights, meta = checkpoints.load_checkpoint_files(run)
    before = (ck / "model.safetensors").read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", full)
    for step in (4, 6):  # re-saving the same step, and a new one
        with pytest.raises(CheckpointError, match="disk is full.*previous checkpoint is intact") as err:
            checkpoints.save_checkpoint(run, step, cfg, weights, meta)
        assert "\n" not in str(err.value)
    assert resolve_checkpoint(run) == ck and (ck / "model.safetensors").read_bytes() == before
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_damaged_latest_weights_fall_back_to_the_newest_intact_checkpoint(tiny_run, tmp_path, capsys, damage):
    run = _copy(tiny_run, tmp_path / "run")
    bad = run / "checkpoints" / "step_0000004" / "model.safetensors"
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garble":
        bad.write_bytes(b"\xff" * 64 + data[64:])
    else:
        bad.unlink()
    assert resolve_checkpoint(run).name == "step_0000002"
    assert "step_0000004" in capsys.readouterr().err
    t = pixtrans.load(run)  # test / translate use the older one, saying so
    assert t.path.name == "step_0000002"
    # the damaged checkpoint named directly is a one-line error
    if damage != "delete":
        with pytest.raises(CheckpointError, match="damaged|truncated"):
            pixtrans.load(bad.parent)


def test_latest_naming_a_missing_checkpoint_or_missing_falls_back(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    shutil.rmtree(run / "checkpoints" / "step_0000004")
    assert resolve_checkpoint(run).name == "step_0000002"
    assert "'latest' names step_0000004, which is missing" in capsys.readouterr().err
    (run / "latest").unlink()  # killed between the folder rename and the pointer write
    assert resolve_checkpoint(run).name == "step_0000002"


@pytest.mark.slow
def test_resume_falls_back_past_a_damaged_train_state(tiny_run, synth_root, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    state = run / "checkpoints" / "step_0000004" / "train_state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="train_state.pt.*damaged"):
        load_train_state(state.parent)
    t = Trainer(tiny_config(synth_root, "train.steps=5", "train.save_every=2"), run, resume=True)
    out = capsys.readouterr().out
    assert t.step == 2 and "step_0000004" in out and "damaged" in out and "step_0000002" in out
    t.fit()
    assert resolve_checkpoint(run).name == "step_0000005"


# ---------------------------------------------------------------------------------------------- resume (class 1)
def test_resume_refuses_changed_hyperparameters_and_records_nothing(tiny_run, synth_root, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    before = (run / "config.yaml").read_text()
    for change in (["train.lr=1e-3"], ["train.lr_policy=step"], ["train.beta1=0.9", "data.batch_size=2"]):
        with pytest.raises(ConfigError) as err:
            Trainer(tiny_config(synth_root, "train.steps=4", "train.save_every=2", *change), run, resume=True)
        msg = str(err.value)
        assert all(c.split("=")[0] in msg for c in change) and "\n" not in msg and "init_from" in msg
        assert (run / "config.yaml").read_text() == before
    # keys that may change are used and recorded, and said so
    t = Trainer(tiny_config(synth_root, "train.steps=6", "train.save_every=3", "train.log_every=2"), run, resume=True)
    assert "train.steps changed 4 -> 6" in capsys.readouterr().out
    t.fit()
    recorded = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert recorded["steps"] == 6 and recorded["save_every"] == 3 and recorded["lr"] == 2e-4


def test_resume_with_sizes_that_follow_the_data(synth_root, tmp_path):
    """data.load_size / crop_size left unset are derived from the data and recorded; resuming with the same
    config (still unset) is no change."""

    def cfg(steps):
        raw = yaml.safe_load(CFG.read_text())
        for k in ("load_size", "crop_size"):
            raw["data"].pop(k, None)
        raw["data"]["root"] = str(synth_root)
        raw["model"].update(ngf=8, ndf=8, num_downs=5)
        raw["train"].update(steps=steps, progress=False, sample_every=0)
        return config_from_dict(raw)

    Trainer(cfg(1), tmp_path / "run").fit()
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert (recorded["load_size"], recorded["crop_size"]) == (64, 64)
    t = Trainer(cfg(2), tmp_path / "run", resume=True)
    assert t.step == 1 and (t.cfg.data.load_size, t.cfg.data.crop_size) == (64, 64)


def test_failed_starts_leave_no_run_folder(synth_root, tmp_path, capsys):
    out = tmp_path / "new"
    args = ["--set", f"data.root={synth_root}", *[a for s in TINY for a in ("--set", s)], "--out", str(out)]
    assert main(["train", str(CFG), *args, "--set", "data.batch_size=100"]) == 2
    assert main(["train", str(CFG), *args, "--set", "data.layout=custom"]) == 2
    assert not out.exists()
    assert main(["test", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 2
    assert not (tmp_path / "t").exists()
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------- divergence (class 1)
@pytest.mark.parametrize("where", ["weight", "buffer"])
def test_divergence_guard_covers_weights_and_buffers_and_never_saves_them(synth_root, tmp_path, where):
    run = tmp_path / "run"

    def poison(t: Trainer):
        if t.step == 3:
            named = dict(t.model.G.named_buffers() if where == "buffer" else t.model.G.named_parameters())
            name = next(k for k, v in named.items() if v.is_floating_point() and ("running" in k or where == "weight"))
            named[name].data.fill_(float("inf"))

    trainer = Trainer(tiny_config(synth_root, "train.steps=6", "train.save_every=2"), run)
    with pytest.raises(PixtransError, match="diverged") as err:
        trainer.fit(poison)
    msg = str(err.value)
    good = resolve_checkpoint(run)
    assert good.name == "step_0000002" and str(good) in msg and ("running" in msg) == (where == "buffer")
    for ck in (run / "checkpoints").glob("step_*"):
        assert all(torch.isfinite(v).all() for v in load_file(str(ck / "model.safetensors")).values())


def test_divergence_before_any_checkpoint_says_so(synth_root, tmp_path):
    def poison(t: Trainer):
        next(t.model.G.parameters()).data.fill_(float("nan"))

    with pytest.raises(PixtransError, match="no checkpoint was saved before this"):
        Trainer(tiny_config(synth_root, "train.steps=3", "train.save_every=0"), tmp_path / "run").fit(poison)


def test_test_and_translate_refuse_non_finite_weights_and_outputs(tiny_run, synth_root, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    ck = resolve_checkpoint(run)
    w = load_file(str(ck / "model.safetensors"))
    key = next(k for k in w if k.startswith("G.") and w[k].is_floating_point())
    w[key] = torch.full_like(w[key], float("nan"))
    save_file(w, str(ck / "model.safetensors"))
    label = sorted((synth_root / "test_label").iterdir())[0]
    for argv in (
        ["test", str(ck), "--data", str(synth_root), "--out", str(tmp_path / "t")],
        ["translate", str(ck), str(label), "--out", str(tmp_path / "o")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "non-finite" in err and "Traceback" not in err
    t = pixtrans.load(resolve_checkpoint(tiny_run))
    t.model.translate = lambda x, style=None: _nan(x)
    with pytest.raises(DataError, match="non-finite"):
        t.translate(label)


def _nan(x):
    from pixtrans.families.base import Translation

    img = torch.full((1, 3, *x["input"].shape[-2:]), float("nan"))
    return Translation(image=img, scales=[img], style={})


# ---------------------------------------------------------------------------------------------- kill during save
@pytest.mark.slow
def test_kill_9_during_a_save_then_resume(synth_root, tmp_path):
    run = tmp_path / "run"
    sets = [f"data.root={synth_root}", "train.steps=40", "train.save_every=1", "train.keep_checkpoints=2", *TINY]
    cmd = [sys.executable, "-m", "pixtrans", "train", str(CFG), "--out", str(run)]
    cmd += [a for s in sets for a in ("--set", s)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, caught = time.time() + 180, False
    while time.time() < deadline and p.poll() is None:
        ckdir = run / "checkpoints"
        if ckdir.is_dir() and len(list(ckdir.glob("step_*"))) >= 2 and list(ckdir.glob(".tmp_*")):
            caught = True  # a checkpoint is being written right now
            break
        time.sleep(0.002)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (run / "latest").is_file()
    good = resolve_checkpoint(run)
    checkpoints.load_train_state(good)
    (run / "checkpoints" / ".tmp_step_9999999_x").mkdir()  # an orphan for sure, whether or not the kill left one
    t = Trainer(tiny_config(synth_root, "train.steps=40", "train.save_every=1", "train.keep_checkpoints=2"), run, True)
    assert t.step == json.loads((good / "meta.json").read_text())["step"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    t.cfg.train.steps = t.step + 1
    t.fit()
    print("killed while a checkpoint was being written:", caught)


# ---------------------------------------------------------------------------------------------- CLI (class 4)
@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "unet_128", "--size", "abc"],
        ["bench", "unet_128", "--size", "64x"],
        ["bench", "unet_128", "--device", "cuda:zero"],
        ["bench", "unet_128", "--threads", "-1"],
        ["data", "synth", "--out", "{tmp}/s", "--size", "64x"],
        ["data", "synth", "--out", "{tmp}/s", "--n", "-1"],
        ["data", "synth", "--out", "{tmp}/afile"],
        ["translate", "{run}", "{label}", "--out", "{tmp}/o", "--style", "{{bad"],
        ["translate", "{run}", "{label}", "--out", "{tmp}/o", "--style", "[1]"],
        ["translate", "{run}", "{label}", "--out", "{tmp}/afile"],
        ["translate", "{run}", "{tmp}/missing.png", "--out", "{tmp}/o"],
        ["translate", "{run}", "{label}", "--out", "{tmp}/o", "--device", "gpu"],
        ["test", "{run}", "--out", "{tmp}/afile"],
        ["test", "{run}", "--out", "{tmp}/o", "--max-items", "-1"],
        ["test", "{run}", "--out", "{tmp}/o", "--style", "{{bad"],
        ["train", str(CFG), "--out", "{tmp}/afile"],
        ["train", str(CFG), "--out", "{tmp}/r", "--set", "train.lr=0"],
        ["train", str(CFG), "--out", "{tmp}/r", "--set", "train.lrr=1"],
        ["train", str(CFG), "--out", "{tmp}/r", "--steps", "-2"],
        ["demo", "--out", "{tmp}/d", "--size", "3"],
    ],
)
def test_cli_mistakes_are_one_line(argv, tiny_run, synth_root, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    label = sorted((synth_root / "test_label").iterdir())[0]
    argv = [a.format(tmp=tmp_path, run=tiny_run, label=label) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: usage line + one error line
        rc = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " ", "runtime:"))]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "args",
    [["--batch", "-2"], ["--threads", "-1"], ["--port", "-1"], ["--max-upload-mb", "-1"], ["--queue", "0"],
     ["--device", "gpu"], ["--max-mp-models", "nan"], ["--max-pixels", "0"]],
)  # fmt: skip
def test_serve_refuses_bad_numbers_in_one_line_before_starting(args, capsys):
    from pixtrans.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pixtrans serve: error: argument " + args[0]) and "Traceback" not in "\n".join(err)
