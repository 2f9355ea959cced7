"""The demo's one report in real headless Chromium: every image loads, the metric table has the untrained and the
trained rows, the grid has input | untrained | trained | [target's style] | target per scene. Screenshot into
``$PIXTRANS_ARTIFACTS`` (default ``artifacts/``) under ``demo/``. ``pixtrans serve`` without arguments finds the
demo's run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pixtrans.web.headless import CHROMIUM, launch_chromium

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A tiny demo, or the finished one in ``$PIXTRANS_DEMO_DIR`` (e.g. ``demo`` after ``make demo``)."""
    from pixtrans.demo import run_demo

    if os.environ.get("PIXTRANS_DEMO_DIR"):
        return Path(os.environ["PIXTRANS_DEMO_DIR"]).resolve()
    out = tmp_path_factory.mktemp("demo_report") / "demo"
    run_demo(out, steps=30, size=64, n=8, ngf=8)
    return out


@pytest.mark.slow
def test_one_report_with_both_models_and_the_serve_hint(demo, capsys):
    summary = json.loads((demo / "summary.json").read_text())
    assert {"trained", "untrained", "report", "serve"} <= set(summary)
    assert summary["serve"] == f"pixtrans serve {summary['run']}" and Path(summary["run"]).name == "run"
    page = (demo / "report" / "index.html").read_text()
    for text in ("untrained", "trained", "target", "losses.png", "pixtrans serve"):
        assert text in page
    assert not (demo / "untrained").exists()  # one report, not two
    images = [p for p in (demo / "report" / "images").iterdir()]
    n = summary["trained"]["n"]
    assert len([p for p in images if p.name.endswith("_untrained.png")]) == n > 0


@pytest.mark.slow
def test_serve_without_arguments_finds_the_demo_run(demo, monkeypatch):
    from pixtrans.web.app import _find_runs

    if demo.name != "demo":
        pytest.skip("the demo folder is not named demo")
    monkeypatch.chdir(demo.parent)
    assert _find_runs()[-1] == str(Path("demo") / "run")


@pytest.mark.slow
@pytest.mark.browser
def test_demo_report_in_chromium(demo, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("PIXTRANS_ARTIFACTS") or ROOT / "artifacts") / "demo"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        ctx = launch_chromium(p, tmp_path / "profile", width=1300, height=1000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((demo / "report" / "index.html").resolve().as_uri())
        page.wait_for_load_state("load")
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        assert broken == 0
        heads = page.evaluate("() => [...document.querySelectorAll('.grid th')].map(t => t.textContent)")
        assert heads[:4] == ["scene", "input", "untrained", "trained"] and heads[-1] == "target"
        metric_rows = page.evaluate("() => [...document.querySelectorAll('table')[0].rows].length")
        assert metric_rows >= 3  # header + untrained + trained
        page.screenshot(path=str(shots / "demo_report.png"), full_page=True)
        ctx.close()
    assert not errors, errors
    assert (shots / "demo_report.png").stat().st_size > 10_000
