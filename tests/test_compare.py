"""``pixtrans compare``: bootstrap CIs (hand-checked cases), the studio's ratings read from its SQLite file, and one
report over two runs of different families and sizes (table, chart, grid, compare.json) through the CLI."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixtrans.errors import PixtransError
from pixtrans.eval.compare import bootstrap_ci, ratings_for, read_ratings

sys.path.insert(0, str(Path(__file__).parent))
from test_web_api import TINY, make_run  # noqa: E402  (tiny untrained checkpoints)


def make_compare_runs(base: Path, data_root: Path) -> dict[str, Path]:
    """pix2pix at 64 px and pix2pixHD at 32 px on the same synthetic test set."""
    root = [f"data.root={data_root}"]
    hd = ["model.n_blocks_global=1", "model.n_downsample_global=2", "model.n_downsample_E=2", "model.nef=8"]
    return {
        "p2p": make_run(base / "p2p", "pix2pix_synth.yaml", [*root, *TINY, "model.num_downs=5"]),
        "hd32": make_run(
            base / "hd32",
            "pix2pixhd_synth.yaml",
            [*root, *TINY, *hd, "data.no_instance=true", "data.load_size=32", "data.crop_size=32"],
        ),
    }


def add_ratings(db_path: Path, checkpoint: Path, scores: list[tuple[int, int]]) -> None:
    """Ratings as the studio stores them (keyed by the resolved checkpoint path)."""
    from pixtrans.checkpoints import resolve_checkpoint
    from pixtrans.web.ratings import RatingsDB

    db = RatingsDB(db_path)
    ck = str((resolve_checkpoint(checkpoint) if (checkpoint / "latest").exists() else checkpoint).resolve())
    for i, (t, d) in enumerate(scores):
        db.add(model=checkpoint.name, checkpoint=ck, family="pix2pix", sample=i, sample_name=f"s{i}",
               translation=t, difference=d)  # fmt: skip


# ------------------------------------------------------------------------------------------ statistics
def test_bootstrap_ci_hand_checked():
    assert bootstrap_ci([2.5] * 10) == (2.5, 2.5, 2.5, 10)  # no spread, no interval
    mean, lo, hi, n = bootstrap_ci([0.0, 1.0] * 50, n_boot=4000)
    # mean of 100 fair coin flips: standard error 0.05, 95% interval about 0.5 ± 0.098
    assert (mean, n) == (0.5, 100)
    assert lo == pytest.approx(0.5 - 1.96 * 0.05, abs=0.02) and hi == pytest.approx(0.5 + 1.96 * 0.05, abs=0.02)
    assert bootstrap_ci([1.0, math.inf, math.nan, None, 3.0])[::3] == (2.0, 2)  # non-finite values left out
    one = bootstrap_ci([4.0])
    assert one[0] == 4.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert bootstrap_ci([1.0, 5.0, 2.0], seed=3) == bootstrap_ci([1.0, 5.0, 2.0], seed=3)  # repeatable


def test_ratings_read_from_the_studio_file(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "step_0000010"
    ck.mkdir(parents=True)
    (ck / "config.yaml").write_text("family: pix2pix\n")
    db = tmp_path / "run" / "ratings.sqlite"
    add_ratings(db, ck, [(4, 6), (6, 2), (8, 4)])
    rows = read_ratings([db, tmp_path / "missing.sqlite"])
    assert len(rows) == 3
    r = ratings_for(rows, ck, tmp_path / "run")
    assert r["n"] == 3 and r["translation_mean"] == 6 and r["translation_std"] == pytest.approx(2.0)
    assert r["difference_mean"] == 4 and r["difference_std"] == pytest.approx(2.0) and not r["other_checkpoint"]
    later = tmp_path / "run" / "checkpoints" / "step_0000020"
    other = ratings_for(rows, later, tmp_path / "run")  # rated on an earlier checkpoint of the same run
    assert other["n"] == 3 and other["other_checkpoint"]
    assert ratings_for(rows, tmp_path / "x" / "checkpoints" / "y", tmp_path / "x") is None
    (tmp_path / "bad.sqlite").write_text("not sqlite")
    with pytest.raises(PixtransError, match="cannot read the ratings database"):
        read_ratings([tmp_path / "bad.sqlite"])


# ------------------------------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def compare_report(tmp_path_factory, synth_root) -> dict:
    """``pixtrans compare`` through the CLI over pix2pix (64 px, rated in the studio) and pix2pixHD (32 px)."""
    from pixtrans.cli import main

    base = tmp_path_factory.mktemp("compare")
    runs = make_compare_runs(base, synth_root)
    add_ratings(runs["p2p"] / "ratings.sqlite", runs["p2p"], [(5, 6), (7, 4), (3, 3)])
    out = base / "report"
    assert main(["compare", str(runs["p2p"]), str(runs["hd32"]), "--data", str(synth_root), "--out", str(out)]) == 0
    return {"out": out, "runs": runs}


@pytest.mark.slow
def test_compare_report_across_families_and_sizes(compare_report):
    out = compare_report["out"]
    summary = json.loads((out / "compare.json").read_text())
    models = {m["name"]: m for m in summary["models"]}
    assert list(models) == ["p2p", "hd32"]
    assert (models["p2p"]["family"], models["p2p"]["size"]) == ("pix2pix", "64x64")
    assert (models["hd32"]["family"], models["hd32"]["size"]) == ("pix2pixhd", "32x32")
    # the CIs are the bootstrap of each run's per-image values
    for name, m in models.items():
        with open(out / "models" / name / "per_image.csv") as f:
            psnr = [float(r["psnr"]) for r in csv.DictReader(f)]
        mean, lo, hi, n = bootstrap_ci(psnr)
        assert m["ci95"]["psnr"] == {"mean": mean, "low": lo, "high": hi, "n": n} and n == 4
        assert lo <= mean <= hi
    assert models["hd32"]["ci95"]["vif"]["n"] == 0  # 32 px is below VIF's 41 px minimum: left out, noted
    # paired difference to the first model: the bootstrap of per-image differences over the same images
    per = {}
    for name in models:
        with open(out / "models" / name / "per_image.csv") as f:
            per[name] = {r["name"]: float(r["ssim"]) for r in csv.DictReader(f)}
    d = [per["hd32"][n] - per["p2p"][n] for n in per["hd32"]]
    assert models["hd32"]["diff_vs_first"]["ssim"] == dict(zip(("mean", "low", "high", "n"), bootstrap_ci(d)))
    assert models["p2p"]["diff_vs_first"] == {}
    # ratings merged for the rated run only
    r = models["p2p"]["ratings"]
    assert r["n"] == 3 and r["translation_mean"] == 5 and r["translation_std"] == pytest.approx(2.0)
    assert models["hd32"]["ratings"] is None
    assert summary["protocol"]["psnr"]["aggregate"] == "mean of per-image values"
    # the page: metric table, chart, grid with input | each model | target for every test image
    page = (out / "index.html").read_text()
    assert "5.00 ± 2.00" in page and "rating: translation" in page and "Δ vs p2p: " in page
    assert re.search(r"\[\d[\d.]*, \d[\d.]*\] <?", page) or "[" in page
    with Image.open(out / "metrics.png") as im:
        assert im.format == "PNG" and im.width > 300
    rows = re.findall(r'<tr data-name="([^"]+)">', page)
    assert len(rows) == 4
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (out / src.replace("%20", " ")).is_file(), src
    assert page.count('_output.png"') >= 2 * 4 * 2  # one output per model per image (link + img)
    assert "<script" in page and "http" not in page.split("<script>")[1]  # inline JS, no CDN


def test_compare_needs_runs_and_names_match(tmp_path, synth_root):
    from pixtrans.eval.compare import run_compare

    with pytest.raises(PixtransError, match="at least one run"):
        run_compare([], synth_root, tmp_path / "r")
    run = make_run(tmp_path / "p", "pix2pix_synth.yaml", [f"data.root={synth_root}", *TINY, "model.num_downs=5"])
    with pytest.raises(PixtransError, match="--names gives 2 names for 1 runs"):
        run_compare([run], synth_root, tmp_path / "r", names=["a", "b"])


def test_bar_chart_without_pyplot(tmp_path):
    import matplotlib

    from pixtrans.eval.compare import bar_chart

    models = [
        {"name": "a", "ci": {"psnr": (20.0, 19.0, 21.0, 4)}, "metrics": {"fid": 12.0}},
        {"name": "b", "ci": {"psnr": (22.0, math.nan, math.nan, 1)}, "metrics": {"fid": None}},
    ]
    before = "matplotlib.pyplot" in sys.modules
    bar_chart(models, ["psnr"], ["fid"], tmp_path / "m.png")
    assert np.asarray(Image.open(tmp_path / "m.png")).std() > 0
    assert ("matplotlib.pyplot" in sys.modules) == before and matplotlib.get_backend()


@pytest.mark.slow
def test_compare_with_set_level_scores(tmp_path, synth_root):
    from test_scores import MeanColour

    from pixtrans.eval.compare import run_compare
    from pixtrans.eval.scores import ScoreOptions

    run = make_run(tmp_path / "p", "pix2pix_synth.yaml", [f"data.root={synth_root}", *TINY, "model.num_downs=5"])
    opts = ScoreOptions(fid=True, kid=True, extractor=MeanColour())
    page = run_compare([run], synth_root, tmp_path / "r", scores=opts, progress=False).read_text()
    summary = json.loads((tmp_path / "r" / "compare.json").read_text())
    m = summary["models"][0]["metrics"]
    assert m["fid"] >= 0 and m["kid_std"] is not None and m["weights"]["inception"].startswith("custom extractor")
    assert summary["protocol"]["fid"]["aggregate"].startswith("whole set")
    assert ">fid ↓</th>" in page and ">kid ↓</th>" in page and "± " in page


@pytest.mark.parametrize(
    ("more_runs", "opts"),
    [
        (["{tmp}/missing_run"], []),
        ([], ["--segmenter", "{tmp}/none.onnx"]),
        ([], ["--lpips", "--lpips-backbone", "{tmp}/none.pth"]),
        ([], ["--ratings", "{tmp}/afile"]),
        ([], ["--names", "a,b"]),
    ],
)
def test_compare_mistakes_are_one_line(more_runs, opts, tmp_path, synth_root, capsys):
    from pixtrans.cli import main

    (tmp_path / "afile").write_text("not sqlite")
    run = make_run(tmp_path / "p", "pix2pix_synth.yaml", [f"data.root={synth_root}", *TINY, "model.num_downs=5"])
    runs = [str(run)] + [a.format(tmp=tmp_path) for a in more_runs]
    opts = [a.format(tmp=tmp_path) for a in opts]
    assert main(["compare", *runs, "--data", str(synth_root), "--out", str(tmp_path / "r"), *opts]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("runtime:")]
    assert len(lines) == 1 and lines[0].startswith("pixtrans: error: "), lines
    assert not (tmp_path / "r").exists()
