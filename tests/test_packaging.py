"""Packaging: configs ship in the package, a lazy CLI, no import-time side effects, and a wheel that runs the demo."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from pixtrans.cli import EXTENSIONS, build_parser
from pixtrans.config import load_config
from pixtrans.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "pixtrans" / "configs"


def _python(code: str, cwd: Path | None = None, **env) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (nothing imported yet), with ``env`` added to the environment."""
    full = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd or ROOT, env=full, capture_output=True, text=True, timeout=300
    )


# ---------------------------------------------------------------------- configs
def test_root_configs_is_the_packaged_folder():
    assert sorted(p.name for p in (ROOT / "configs").glob("*.yaml")) == sorted(p.name for p in PACKAGED.glob("*.yaml"))
    assert len(list(PACKAGED.glob("*.yaml"))) >= 10


def test_load_config_falls_back_to_the_packaged_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    for name in ("configs/pix2pix_synth.yaml", "pix2pix_synth.yaml", "pix2pix_synth"):
        assert load_config(name).family == "pix2pix"
    (tmp_path / "pix2pix_synth.yaml").write_text("family: spade\n")  # a file on disk wins
    assert load_config("pix2pix_synth.yaml").family == "spade"
    for missing in ("configs/nope.yaml", "nope", "elsewhere/pix2pix_synth.yaml"):
        with pytest.raises(ConfigError, match=f"{missing} not found.*pix2pix_synth"):
            load_config(missing)


# ---------------------------------------------------------------------- CLI
def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom pixtrans.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'fastapi', 'matplotlib', 'pydantic') if m in sys.modules))"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "[]"
    for name, _, _ in EXTENSIONS:
        assert any(line.strip().startswith(name) for line in lines), name


def test_extension_commands_load_on_demand(capsys):
    """Each lazily listed command shows its module's full options and the same help line as the module gives."""
    for name, help_line, _ in EXTENSIONS:
        parser = build_parser()
        sub = next(a for a in parser._actions if a.dest == "cmd")
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: pixtrans {name} ") and "--" in out.split("options:")[-1].replace("--help", "")
        module_help = next(a.help for a in sub._choices_actions if a.dest == name)
        assert module_help == help_line, f"update the help line of {name!r} in cli.EXTENSIONS"


def test_missing_extra_is_one_line_naming_it():
    r = _python("import sys\nsys.modules['fastapi'] = None\nfrom pixtrans.cli import main\nsys.exit(main(['serve']))")
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == '''pixtrans: error: `pixtrans serve` needs fastapi, which is not installed: pip install "pixtrans[web]"'''
    )


def test_import_has_no_global_side_effects():
    """Importing every pixtrans module leaves the environment, torch's threads and matplotlib's backend alone."""
    code = """
import importlib, os, pkgutil, sys
import matplotlib, torch
env, threads = dict(os.environ), torch.get_num_threads()
import pixtrans
for m in pkgutil.walk_packages(pixtrans.__path__, "pixtrans."):
    if m.name != "pixtrans.__main__":
        try:
            importlib.import_module(m.name)
        except ModuleNotFoundError as err:
            print("skipped", m.name, err.name)
assert "pixtrans.cli" in sys.modules and "pixtrans.eval.plots" in sys.modules
changed = {k for k in env.keys() | os.environ.keys() if env.get(k) != os.environ.get(k)}
assert not changed, changed
assert torch.get_num_threads() == threads
assert matplotlib.get_backend().lower() == "svg", matplotlib.get_backend()
print("ok")
"""
    r = _python(code, MPLBACKEND="svg")
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_cli_main_sets_omp_wait_policy():
    code = """
import os
from pixtrans.cli import main
assert "OMP_WAIT_POLICY" not in os.environ
try:
    main(["data", "synth", "--help"])
except SystemExit:
    print(os.environ["OMP_WAIT_POLICY"])
"""
    r = _python(code)
    assert r.returncode == 0 and r.stdout.strip().endswith("PASSIVE"), r.stderr


# ---------------------------------------------------------------------- wheel
@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("PIXTRANS_WHEEL_TEST"),
    reason="installs torch and the wheel in a fresh venv (minutes): `make wheel-test`, a step of .ci/run",
)
def test_wheel_runs_the_demo_outside_the_repo(tmp_path):
    """Build the wheel, install it and its dependencies in a fresh venv, run a short demo in an empty folder."""
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    times: dict[str, float] = {}

    def run(step, *cmd, cwd=tmp_path):
        t0 = time.perf_counter()
        r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        times[step] = times.get(step, 0.0) + time.perf_counter() - t0
        return r.stdout

    # From a copy of what the wheel is made of (the build leaves build/ behind), with this venv's setuptools when it
    # has one (no download), else in pip's isolated build environment.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "pixtrans", src / "pixtrans", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    run("wheel", sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", dist, src)
    (wheel,) = dist.glob("pixtrans-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "pixtrans/configs/pix2pix_synth.yaml" in z.namelist()
    bin_ = venv / "bin"
    run("venv", sys.executable, "-m", "venv", venv)
    run("torch", bin_ / "pip", "install", "-q", "torch==2.13.0")
    run("install", bin_ / "pip", "install", "-q", wheel)
    where = run("install", bin_ / "python", "-c", "import pixtrans; print(pixtrans.__file__)", cwd=work)
    assert str(venv) in where and str(ROOT) not in where
    run("demo", bin_ / "pixtrans", "demo", "--steps", "20", "--n", "8", "--out", "out", cwd=work)
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["steps"] == 20 and (work / "out" / "report" / "index.html").is_file()
    print("wheel test seconds:", {k: round(v) for k, v in times.items()})
