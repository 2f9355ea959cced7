"""Batch translation (pixtrans.infer.batch): sharding, restart after a crash, manifest, torchrun with 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixtrans.errors import PixtransError
from pixtrans.infer.batch import MANIFEST, shard, translate_files, write_manifest

ROOT = Path(__file__).resolve().parents[1]


class StubTranslator:
    """Stands in for pixtrans.load(...): records calls, returns a tiny image carrying a style."""

    def __init__(self, name: str = "step_0000001"):
        self.path = Path("/runs/r/checkpoints") / name
        self.calls: list[Path] = []

    def translate(self, f, instances=None, style=None, tile=0, all_scales=False):
        self.calls.append(Path(f))
        imgs = []
        for i in range(3 if all_scales else 1):
            img = Image.new("RGB", (2 << i, 2 << i), (len(self.calls), 0, 0))
            img.info["pixtrans_style"] = json.dumps({"seed": len(self.calls), **(style or {})})
            imgs.append(img)
        return imgs if all_scales else imgs[0]


def _inputs(tmp_path: Path, n: int) -> list[Path]:
    return [tmp_path / "in" / f"img_{i:03d}.png" for i in range(n)]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_cover_every_input_exactly_once(tmp_path, world):
    items = list(range(10))
    parts = [shard(items, r, world) for r in range(world)]
    assert sorted(x for p in parts for x in p) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # the same through translate_files: every input translated once, by one rank, into one output
    inputs = _inputs(tmp_path, 7)
    stubs = [StubTranslator() for _ in range(world)]
    records = [r for rank, t in enumerate(stubs) for r in translate_files(t, inputs[::-1], tmp_path / "o", rank, world)]
    calls = [c for t in stubs for c in t.calls]
    assert sorted(calls) == inputs and len(set(calls)) == len(inputs)
    assert sorted(r["input"] for r in records) == [str(p) for p in inputs]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [p.name for p in inputs]  # no temporary files left
    with pytest.raises(ValueError):
        shard(items, world, world)


def test_restart_skips_outputs_already_written(tmp_path):
    inputs, out = _inputs(tmp_path, 5), tmp_path / "o"
    first = StubTranslator()
    before = translate_files(first, inputs, out, progress=False)
    assert len(first.calls) == 5
    # a crash after three outputs: two missing, one half-written temporary file from the killed process
    (out / "img_003.png").unlink()
    (out / "img_004.png").unlink()
    (out / ".img_004.png.0.tmp").write_bytes(b"\x89PNG partial")
    again = StubTranslator()
    after = translate_files(again, inputs, out, progress=False)
    assert again.calls == inputs[3:]
    # skipped outputs keep the style recorded in their PNG
    assert [r["style"] for r in after[:3]] == [r["style"] for r in before[:3]]
    # another checkpoint or another requested style translates everything again
    other = StubTranslator("step_0000002")
    translate_files(other, inputs, out, progress=False)
    assert len(other.calls) == 5
    styled = StubTranslator("step_0000002")
    translate_files(styled, inputs, out, style={"seed": 3}, progress=False)
    assert len(styled.calls) == 5


def test_all_scales_restart(tmp_path):
    inputs, out = _inputs(tmp_path, 2), tmp_path / "o"
    t = StubTranslator()
    rec = translate_files(t, inputs, out, all_scales=True, progress=False)
    assert rec[0]["output"] == [str(out / f"img_000_scale{i}.png") for i in range(3)]
    (out / "img_001_scale2.png").unlink()
    t2 = StubTranslator()
    translate_files(t2, inputs, out, all_scales=True, progress=False)
    assert t2.calls == inputs[1:]


def test_manifest_content(tmp_path):
    inputs, out = _inputs(tmp_path, 4), tmp_path / "o"
    records = translate_files(StubTranslator(), inputs, out, rank=1, world=2, progress=False)
    records += translate_files(StubTranslator(), inputs, out, rank=0, world=2, progress=False)
    path = write_manifest(records, out)
    assert path == out / MANIFEST
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["input"] for r in rows] == [str(p) for p in inputs]  # sorted, one line per input
    assert [r["output"] for r in rows] == [str(out / p.name) for p in inputs]
    for r in rows:
        assert set(r) == {"input", "output", "style"}
        assert r["style"] == json.loads(Image.open(r["output"]).info["pixtrans_style"])


def test_same_stem_twice_is_an_error(tmp_path):
    with pytest.raises(PixtransError, match="a.png"):
        translate_files(StubTranslator(), [tmp_path / "x" / "a.png", tmp_path / "y" / "a.jpg"], tmp_path / "o")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-step tiny pix2pix run on synthetic labels, and a folder of 6 label maps to translate."""
    from pixtrans.cli import main
    from pixtrans.data.synth import generate

    tmp = tmp_path_factory.mktemp("batch")
    data = generate(tmp / "data", n=6, n_test=1, size=32, seed=0)
    cfg = str(ROOT / "pixtrans" / "configs" / "pix2pix_synth.yaml")
    sets = ["data.crop_size=32", "data.load_size=32", "model.num_downs=5", "model.ngf=8", "model.ndf=8"]
    sets += ["train.progress=false", "train.sample_every=0"]
    args = ["train", cfg, "--set", f"data.root={data}", "--steps", "1", "--out", str(tmp / "run")]
    assert main([*args, *[x for s in sets for x in ("--set", s)]]) == 0
    return tmp / "run", data / "train_label"


@pytest.mark.slow
def test_cli_translate_folder_writes_manifest_and_restarts(tiny_run, tmp_path):
    from pixtrans.cli import main

    run, labels = tiny_run
    out = tmp_path / "o"
    assert main(["translate", str(run), str(labels), "--out", str(out), "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    assert len(rows) == 6 and all(Path(r["output"]).is_file() for r in rows)
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main(["translate", str(run), str(labels), "--out", str(out), "--device", "cpu"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamp  # nothing translated again


@pytest.mark.slow
def test_torchrun_two_processes(tiny_run, tmp_path):
    run, labels = tiny_run
    out = tmp_path / "o"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "pixtrans", "translate", str(run), str(labels), "--out", str(out), "--device", "cpu"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    inputs = sorted(str(f) for f in labels.iterdir())
    assert [r["input"] for r in rows] == inputs  # rank 0 gathered both shards: every input exactly once
    assert sorted(p.name for p in out.glob("*.png")) == sorted(Path(i).stem + ".png" for i in inputs)
    styles = {json.loads(Image.open(r["output"]).info["pixtrans_style"]) == r["style"] for r in rows}
    assert styles == {True}
