"""The ``pixtrans compare`` report in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright), opened
from disk: every image loads, the per-image grid sorts by a chosen metric of a chosen model (select + direction
button) and by clicking a column title, the metric table sorts too. Screenshots go to ``$PIXTRANS_ARTIFACTS``
(default ``artifacts/``) under ``compare/``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from pixtrans.web.headless import CHROMIUM, launch_chromium

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from test_compare import compare_report  # noqa: E402, F401  (the report over pix2pix 64 px + pix2pixHD 32 px)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    out = Path(os.environ.get("PIXTRANS_ARTIFACTS") or ROOT / "artifacts") / "compare"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as p:
        ctx = launch_chromium(p, tmp_path / "profile", width=1500, height=1000)
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.set_default_timeout(60_000)
        yield pg
        ctx.close()
        assert not errors, f"errors in the page: {errors}"


def per_image(out: Path, model: str, metric: str) -> dict[str, float]:
    with open(out / "models" / model / "per_image.csv") as f:
        return {r["name"]: float(r[metric]) for r in csv.DictReader(f)}


def grid_names(page) -> list[str]:
    return page.eval_on_selector_all("#grid tbody tr", "rows => rows.map(r => r.dataset.name)")


def test_compare_report_sorts_by_a_metric(page, compare_report, artifacts):  # noqa: F811
    out = compare_report["out"]
    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0
    assert page.locator("#grid tbody tr").count() == 4
    assert page.locator("#metrics tbody tr").count() == 2
    page.screenshot(path=str(artifacts / "compare_report.png"), full_page=True)

    # the select: PSNR of pix2pix, higher is better -> descending first, then the button flips it
    psnr = per_image(out, "p2p", "psnr")
    page.select_option("#sortkey", label="psnr · p2p")
    assert grid_names(page) == sorted(psnr, key=lambda n: -psnr[n])
    assert page.text_content("#sortdir") == "descending"
    page.click("#sortdir")
    assert grid_names(page) == sorted(psnr, key=lambda n: psnr[n])

    # a column title: SSIM of pix2pixHD
    ssim = per_image(out, "hd32", "ssim")
    page.click("#grid th[data-metric='ssim'][data-model='hd32']")
    assert grid_names(page) == sorted(ssim, key=lambda n: -ssim[n])
    assert page.get_attribute("#grid th[data-metric='ssim'][data-model='hd32']", "class").endswith("sorted")
    assert page.eval_on_selector("#sortkey", "s => s.options[s.selectedIndex].text") == "ssim · hd32"
    assert page.text_content("#sortdir") == "descending"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "compare_sorted_by_ssim.png"), full_page=True)

    # the metric table sorts by its columns as well (psnr, higher first)
    page.click("#metrics th:has-text('psnr')")
    first = page.text_content("#metrics tbody tr:first-child td:first-child")
    means = {m: sum(v.values()) / len(v) for m in ("p2p", "hd32") for v in [per_image(out, m, "psnr")]}
    assert first == max(means, key=means.get)
