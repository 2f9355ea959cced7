"""Shared fixtures: the real samples in ../shared/data (tests skip without them) and tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

# Small convs on 2 shared cores: OpenMP's default busy-waiting makes them many times slower under load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    torch.set_num_threads(2)


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
