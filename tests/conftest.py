"""Shared fixtures: the real samples in ../shared/data (tests skip without them) and tiny synthetic data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Small convs on 2 shared cores: OpenMP's default busy-waiting makes them many times slower under load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PIX2PIX_CFG = ROOT / "pixtrans" / "configs" / "pix2pix_synth.yaml"
# `--set` items for a tiny pix2pix (32 px crops, quiet logs) in the training tests; later items override these.
TINY_PIX2PIX = [
    "model.ngf=8",
    "model.ndf=8",
    "model.num_downs=5",
    "data.load_size=32",
    "data.crop_size=32",
    "train.progress=false",
    "train.log_every=1",
    "train.sample_every=0",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    torch.set_num_threads(2)


@pytest.fixture
def one_thread():
    """One intra-op thread: on the shared 2-core test machine two OpenMP threads are ~20x slower for tiny convs."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small synthetic label->photo dataset (64 px, 8 train + 4 test), made once per session."""
    from pixtrans.data.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, n=8, n_test=4, size=64, seed=1)
    return out


def tiny_config(root, *extra: str, base: list[str] = TINY_PIX2PIX):
    """The pix2pix synth config on data ROOT with BASE then EXTRA applied as `--set` items."""
    from pixtrans.config import load_config

    return load_config(PIX2PIX_CFG, [f"data.root={root}", *base, *extra])


def child_env() -> dict[str, str]:
    """The environment for a `pixtrans` child process: one OpenMP thread, unbuffered output, this checkout first."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def torchrun_train(cfg, out, sets: list[str], *extra: str) -> list[str]:
    """The command that runs `pixtrans train CFG --set SETS... --out OUT EXTRA...` as two torchrun processes."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args = [a for s in sets for a in ("--set", s)]
    return [*torchrun, "-m", "pixtrans", "train", str(cfg), *args, "--out", str(out), *extra]


def artifacts_dir(name: str) -> Path:
    """Where a test writes screenshots: ``$PIXTRANS_ARTIFACTS`` (default ``artifacts/``) / NAME, created."""
    out = Path(os.environ.get("PIXTRANS_ARTIFACTS") or ROOT / "artifacts") / name
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium context for one test module (Debian's binary via ``pixtrans.web.headless``)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from pixtrans.web.headless import launch_chromium

    with sync_api.sync_playwright() as p:
        ctx = launch_chromium(p, tmp_path_factory.mktemp("chromium_profile"))
        yield ctx
        ctx.close()
