"""Issue 13 leftovers: running out of memory and unwritable output folders are one line each, with no state lost.

Failed allocations are simulated by making every ``Conv2d`` forward raise what torch raises (CUDA, the CPU
allocator, cuBLAS, ``MemoryError``); an unwritable ``--out`` by a file in the way of the folder or by a probe write
that the file system refuses (root passes permission checks, so both are tested without chmod).
"""

from __future__ import annotations

import base64
import errno
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PIX2PIX_CFG as CFG
from conftest import TINY_PIX2PIX as TINY

from pixtrans.cli import main
from pixtrans.config import load_config
from pixtrans.errors import ConfigError, OutOfMemory, is_out_of_memory, memory_guard, writable_folder
from pixtrans.train.trainer import Trainer

FAILURES = {
    "cuda": lambda: torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.10 GiB"
    ),
    "cpu": lambda: RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 34359738368 bytes. Error code 12 (Cannot allocate memory)"
    ),
    "cublas": lambda: RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    "python": lambda: MemoryError(),
}


@pytest.fixture(scope="module")
def tiny_run(synth_root, tmp_path_factory) -> Path:
    """A 2-step pix2pix run on 32 px crops (one checkpoint, step 2)."""
    run = tmp_path_factory.mktemp("oom") / "run"
    cfg = load_config(CFG, [f"data.root={synth_root}", *TINY, "train.steps=2"])
    Trainer(cfg, run).fit()
    return run


def fail_convs(monkeypatch, make_error) -> None:
    """Every Conv2d forward raises ``make_error()`` (as a failed allocation inside the network would)."""

    def forward(self, x):
        raise make_error()

    monkeypatch.setattr(torch.nn.Conv2d, "forward", forward)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("runtime:") and "%|" not in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- recognising OOM
@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_failed_allocations_are_recognised_and_say_how_much(kind):
    err = FAILURES[kind]()
    assert is_out_of_memory(err)
    with pytest.raises(OutOfMemory) as got, memory_guard("translating 4096x2048 on cuda:0", "use --tile 512"):
        raise err
    text = str(got.value)
    assert text.startswith("out of memory translating 4096x2048 on cuda:0") and text.endswith(": use --tile 512")
    assert ("20.00 GiB" in text) == (kind == "cuda") and ("32.00 GiB" in text) == (kind == "cpu")
    assert got.value.__cause__ is err


@pytest.mark.parametrize(
    "err",
    [RuntimeError("Expected all tensors to be on the same device"), ValueError("out of memory"), OSError(2, "x")],
)
def test_other_errors_pass_the_guard_unchanged(err):
    assert not is_out_of_memory(err)
    with pytest.raises(type(err)) as got, memory_guard("x"):
        raise err
    assert got.value is err


# ---------------------------------------------------------------------------------------------- CLI commands
@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_translate_out_of_memory_is_one_line_with_its_advice(kind, tiny_run, synth_root, tmp_path, capsys, monkeypatch):
    label = sorted((synth_root / "test_label").iterdir())[0]
    fail_convs(monkeypatch, FAILURES[kind])
    assert main(["translate", str(tiny_run), str(label), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2
    line = one_line(capsys)
    assert line.startswith("pixtrans: error: out of memory translating 64x64 on cpu"), line
    assert "--tile 512" in line and "--precision fp16" in line


def test_test_and_bench_out_of_memory_are_one_line_with_their_advice(
    tiny_run, synth_root, tmp_path, capsys, monkeypatch
):
    fail_convs(monkeypatch, FAILURES["cpu"])
    argv = ["test", str(tiny_run), "--data", str(synth_root), "--out", str(tmp_path / "t"), "--max-items", "1"]
    assert main(argv) == 2
    line = one_line(capsys)
    assert "out of memory translating" in line and "(tried to allocate 32.00 GiB)" in line and "--precision" in line
    argv = ["bench", "unet_128", "--size", "128x128", "--runs", "1", "--warmup", "0", "--set", "model.ngf=8"]
    assert main(argv) == 2
    line = one_line(capsys)
    assert "out of memory benchmarking unet_128 at 128x128 on cpu" in line and "smaller --size" in line, line


def test_training_out_of_memory_saves_nothing_and_keeps_the_last_checkpoint(
    tiny_run, synth_root, tmp_path, capsys, monkeypatch
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = tree(run / "checkpoints")
    fail_convs(monkeypatch, FAILURES["cuda"])
    sets = [a for s in [f"data.root={synth_root}", *TINY] for a in ("--set", s)]
    assert main(["train", str(CFG), *sets, "--out", str(run), "--resume", "--steps", "4"]) == 2
    line = one_line(capsys)
    assert "out of memory at training step 3 on cpu (data.batch_size=1, crop 32)" in line, line
    assert "lower data.batch_size" in line and "nothing was saved" in line
    assert f"the last checkpoint {run / 'checkpoints' / 'step_0000002'} is intact" in line
    assert tree(run / "checkpoints") == before and (run / "latest").read_text().strip() == "step_0000002"
    assert main(["train", str(CFG), *sets, "--out", str(tmp_path / "new")]) == 2  # a fresh run: nothing to keep
    assert "out of memory at training step 1" in (line := one_line(capsys)) and "no checkpoint had been saved" in line


def test_serve_and_demo_out_of_memory_are_one_line_with_their_advice(tiny_run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("fastapi")
    import pixtrans.web.app as web_app

    def load_models(*args, **kw):
        raise MemoryError()

    monkeypatch.setattr(web_app, "load_models", load_models)
    assert main(["serve", str(tiny_run), "--device", "cpu"]) == 2
    line = one_line(capsys)
    assert line.startswith("pixtrans: error: out of memory in `pixtrans serve` on cpu: serve fewer checkpoints"), line
    fail_convs(monkeypatch, FAILURES["cpu"])
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "1", "--size", "32", "--n", "2", "--ngf", "4"]) == 2
    line = one_line(capsys)
    assert "out of memory at training step 1 on cpu" in line and "nothing was saved" in line, line


def test_unexpected_runtime_errors_are_one_line_pointing_at_the_debug_switch(
    tiny_run, synth_root, tmp_path, capsys, monkeypatch
):
    label = sorted((synth_root / "test_label").iterdir())[0]
    fail_convs(monkeypatch, lambda: RuntimeError("mat1 and mat2 shapes cannot be multiplied\n(more torch text)"))
    argv = ["translate", str(tiny_run), str(label), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    line = one_line(capsys)
    assert "unexpected RuntimeError: mat1 and mat2 shapes cannot be multiplied (rerun with PIXTRANS_DEBUG=1" in line
    monkeypatch.setenv("PIXTRANS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        main(argv)


# ---------------------------------------------------------------------------------------------- the studio
def test_studio_answers_503_for_out_of_memory_and_keeps_serving(tiny_run, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from pixtrans.web.app import create_app

    runs = [shutil.copytree(tiny_run, tmp_path / name) for name in ("a", "b")]
    app = create_app(runs, None, tmp_path / "r.sqlite", batch=1)
    ids = np.zeros((32, 32), np.uint8)
    ids[16:] = 1
    label = {"width": 32, "height": 32, "dtype": "u8", "data": base64.b64encode(ids.tobytes()).decode()}
    headers = {"X-Pixtrans": "1"}
    models = app.state.studio.models
    with TestClient(app, base_url="http://127.0.0.1") as c:
        a, b = list(models)
        original = models[a].translator.run_generator
        failure = {"kind": "cuda"}

        def oom(*args, **kw):
            raise FAILURES[failure["kind"]]()

        models[a].translator.run_generator = oom  # one of two models fails: the other's result stands
        r = c.post("/api/translate", json={"label": label, "models": [a, b]}, headers=headers)
        assert r.status_code == 200, r.text
        outs = {o["model"]: o for o in r.json()["outputs"]}
        assert outs[b]["ok"] and not outs[a]["ok"]
        assert (
            outs[a]["error"].startswith(f"{a}: out of memory translating 32x32 on cpu")
            and "fit 'tile'" in outs[a]["error"]
        )

        for kind in ("cuda", "python"):  # the only model fails: 503 with the advice, then the next request works
            failure["kind"] = kind
            r = c.post("/api/translate", json={"label": label, "models": [a]}, headers=headers)
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert "out of memory" in r.json()["detail"] and "fit 'tile'" in r.json()["detail"]
        models[a].translator.run_generator = original
        assert c.get("/api/health").json()["pending"] == 0
        assert c.post("/api/translate", json={"label": label, "models": [a]}, headers=headers).status_code == 200
        assert "503" in c.get("/openapi.json").json()["paths"]["/api/translate"]["post"]["responses"]


# ---------------------------------------------------------------------------------------------- unwritable --out
def refuse_writes_in(monkeypatch, folder: Path) -> None:
    """The file system refuses new files in ``folder`` (as a read-only mount does, for root too)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_writable_folder_names_the_path_and_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*afile/sub: .*afile is a file, so no folder can be made there"):
        writable_folder(tmp_path / "afile" / "sub")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        writable_folder(tmp_path / "afile")
    with pytest.raises(ConfigError, match="is a folder; give a file name"):
        writable_folder(tmp_path, file=True)
    assert writable_folder(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    refuse_writes_in(monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match=r"--out .*new: cannot write in .* \(Read-only file system\)"):
        writable_folder(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def _argv(cmd: str, out: Path, run: Path, synth_root: Path) -> list[str]:
    label = sorted((synth_root / "test_label").iterdir())[0]
    sets = [a for s in [f"data.root={synth_root}", *TINY, "train.steps=1"] for a in ("--set", s)]
    return {
        "train": ["train", str(CFG), *sets, "--out", str(out)],
        "test": ["test", str(run), "--data", str(synth_root), "--out", str(out)],
        "translate": ["translate", str(run), str(label), "--out", str(out)],
        "export-onnx": ["export", str(run), "--out", str(out / "m.onnx")],
        "export-pixtrans": ["export", str(run), "--format", "pixtrans", "--out", str(out)],
        "export-web": ["export", str(run), "--format", "web", "--out", str(out)],
        "demo": ["demo", "--out", str(out), "--steps", "1", "--size", "32", "--n", "2", "--ngf", "4"],
        "data-synth": ["data", "synth", "--out", str(out), "--n", "2"],
    }[cmd]


COMMANDS = ["train", "test", "translate", "export-onnx", "export-pixtrans", "export-web", "demo", "data-synth"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_out_under_a_file_is_one_line_before_any_work(cmd, tiny_run, synth_root, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "out"
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda *a: pytest.fail("work began before --out was checked"))
    assert main(_argv(cmd, out, tiny_run, synth_root)) == 2
    line = one_line(capsys)
    assert "afile is a file, so no folder can be made there" in line and str(out) in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_read_only_out_is_one_line_before_any_work(cmd, tiny_run, synth_root, tmp_path, capsys, monkeypatch):
    parent = tmp_path / "ro"
    parent.mkdir()
    out = parent / "out"
    refuse_writes_in(monkeypatch, parent)
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda *a: pytest.fail("work began before --out was checked"))
    assert main(_argv(cmd, out, tiny_run, synth_root)) == 2
    line = one_line(capsys)
    assert f"cannot write in {parent}" in line and "Read-only file system" in line and str(out) in line, line
    assert list(parent.iterdir()) == []


def test_oom_advice_never_suggests_the_cpu_to_a_cpu_run():
    import types

    from pixtrans.cli import _oom_line

    cpu = _oom_line(RuntimeError("DefaultCPUAllocator: can't allocate memory"), types.SimpleNamespace(cmd="translate"))
    assert "--tile 512" in cpu and "--device cpu" not in cpu
    gpu = _oom_line(RuntimeError("CUDA out of memory."), types.SimpleNamespace(cmd="translate", device="cuda"))
    assert "--device cpu" in gpu and "on cuda" in gpu
