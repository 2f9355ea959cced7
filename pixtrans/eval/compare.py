"""``pixtrans compare RUN... --data DIR --out REPORT``: one HTML report across runs of any family and size.

Each run is tested on the same test set (``pixtrans test`` into ``REPORT/models/<name>/``, each at its own
preprocessing size); the report has the metric table with percentile-bootstrap 95% confidence intervals of the
per-image metrics, set-level scores (FID, KID, mIoU when asked for), the studio's human ratings (mean ± std, n) when a
ratings database exists, a bar chart (``metrics.png``) and a per-image grid (input | each model | target) sortable by
any metric with a few lines of inline JavaScript. ``compare.json`` holds every number.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ..errors import PixtransError
from .score_args import add_score_args, score_options

HELP = "HTML report across runs: metrics with bootstrap CIs, sortable image grid, ratings"
PER_IMAGE = ("psnr", "ssim", "vif", "lpips")  # resampled by the bootstrap
SET_LEVEL = ("psnr_set", "fid", "kid", "miou", "pixel_acc")  # one value per run
LOWER_IS_BETTER = {"lpips", "fid", "kid"}


# ---------------------------------------------------------------------------- statistics
def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the finite ``values``: percentile bootstrap over images (resampled with replacement,
    ``n_boot`` times, fixed ``seed``). NaN bounds for fewer than 2 values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan, int(v.size)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return mean, float(lo), float(hi), int(v.size)


# ---------------------------------------------------------------------------- ratings (the studio's SQLite file)
def read_ratings(db_paths: Sequence[str | Path]) -> list[dict]:
    """Every rating row (model, checkpoint, family, translation, difference) of the studio's SQLite files; the file
    is read directly (schema of :mod:`pixtrans.web.ratings`), read-only. Missing files are skipped."""
    rows: list[dict] = []
    for p in db_paths:
        p = Path(p)
        if not p.is_file():
            continue
        try:
            con = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True, timeout=10)
            try:
                cur = con.execute("SELECT model, checkpoint, family, translation, difference FROM ratings")
                rows += [dict(zip(("model", "checkpoint", "family", "translation", "difference"), r)) for r in cur]
            finally:
                con.close()
        except sqlite3.Error as err:
            raise PixtransError(
                f"{p}: cannot read the ratings database ({err}); is it a studio ratings.sqlite?"
            ) from None
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def ratings_for(rows: list[dict], checkpoint: Path, run: Path) -> dict | None:
    """Mean ± std and n of the ratings of ``checkpoint`` (the studio keys them by the resolved checkpoint path);
    when there are none, those of another checkpoint of the same run folder (``other_checkpoint``: true)."""
    ck = str(Path(checkpoint).resolve())
    mine = [r for r in rows if r["checkpoint"] == ck]
    other = False
    if not mine:
        run_s = str(Path(run).resolve())
        mine = [r for r in rows if str(Path(r["checkpoint"]).parent.parent) == run_s]
        other = bool(mine)
    if not mine:
        return None
    tm, ts = _mean_std([float(r["translation"]) for r in mine])
    dm, ds = _mean_std([float(r["difference"]) for r in mine])
    return {
        "n": len(mine),
        "translation_mean": tm,
        "translation_std": ts,
        "difference_mean": dm,
        "difference_std": ds,
        "other_checkpoint": other,
    }


# ---------------------------------------------------------------------------- running the models
def _run_folder(ck: Path) -> Path:
    return ck.parent.parent if ck.parent.name == "checkpoints" else ck


def _read_per_image(path: Path) -> list[dict]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for k in PER_IMAGE:
                if r.get(k) not in (None, ""):
                    r[k] = float(r[k])
                else:
                    r.pop(k, None)
            rows.append(r)
    return rows


def _unique(names: list[str]) -> list[str]:
    out, seen = [], {}
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}-{k + 1}")
    return out


def run_compare(
    runs: Sequence[str | Path],
    data: str | Path,
    out: str | Path,
    names: Sequence[str] | None = None,
    scores=None,
    ratings: Sequence[str | Path] | None = None,
    max_items: int = 0,
    device: str = "auto",
    n_boot: int = 1000,
    progress: bool = True,
) -> Path:
    """Test every run on ``data`` and write ``out/index.html``, ``out/metrics.png`` and ``out/compare.json``.

    ``ratings``: studio databases to merge (default: ``ratings.sqlite`` of each run folder that has one)."""
    from ..infer.translator import load
    from .evaluate import run_test

    if not runs:
        raise PixtransError("compare needs at least one run or checkpoint folder")
    out = Path(out)  # made once every checkpoint, weight file and database is found: a failed start leaves none
    translators = [load(r, device=device) for r in runs]  # every checkpoint is checked before the long part
    folders = [_run_folder(Path(t.path)) for t in translators]
    labels = _unique(list(names) if names else [f.name for f in folders])
    if len(labels) != len(runs):
        raise PixtransError(f"--names gives {len(labels)} names for {len(runs)} runs")
    if scores is not None and (scores.fid or scores.kid) and scores.extractor is None:
        from dataclasses import replace

        from ..layers.inception import load_fid_inception

        scores = replace(scores, extractor=load_fid_inception(scores.inception_weights))  # loaded once for all runs
    dbs = list(ratings) if ratings else [f / "ratings.sqlite" for f in folders]
    rating_rows = read_ratings(dbs)
    models = []
    for i, (label, folder) in enumerate(zip(labels, folders)):
        t, translators[i] = translators[i], None  # free each model once it is tested
        sub = out / "models" / label
        metrics = run_test(t, data, sub, max_items=max_items, progress=progress, scores=scores)
        per = _read_per_image(sub / "per_image.csv")
        size = t.cfg.data
        models.append(
            {
                "name": label,
                "family": t.family,
                "checkpoint": str(t.path),
                "params": t.num_params,
                "size": _size_text(sub, per),
                "load_size": getattr(size, "load_size", None),
                "metrics": metrics,
                "per_image": per,
                "dir": f"models/{quote(label)}",
                "ratings": ratings_for(rating_rows, Path(t.path), folder),
            }
        )
    return write_compare_report(out, models, data=str(data), n_boot=n_boot, ratings_dbs=[str(d) for d in dbs])


def _size_text(sub: Path, per: list[dict]) -> str:
    from PIL import Image

    for r in per:
        if r.get("output"):
            with Image.open(sub / r["output"]) as im:
                return f"{im.width}x{im.height}"
    return ""


# ---------------------------------------------------------------------------- report
def summarise(models: list[dict], n_boot: int = 1000) -> tuple[list[str], list[str]]:
    """Add ``ci`` (metric -> mean, low, high, n) to each model and, to every model after the first, ``diff``: the
    paired difference to the first model over the images both scored (per-image differences resampled, so the
    interval excludes what the images share). Returns (per-image metrics, set metrics) present."""
    per_keys = [k for k in PER_IMAGE if any(k in r for m in models for r in m["per_image"])]
    set_keys = [k for k in SET_LEVEL if any(m["metrics"].get(k) is not None for m in models)]
    for m in models:
        m["ci"] = {k: bootstrap_ci([r[k] for r in m["per_image"] if k in r], n_boot=n_boot) for k in per_keys}
    ref = {r["name"]: r for r in models[0]["per_image"]} if models else {}
    for m in models[1:]:
        m["diff"] = {}
        for k in per_keys:
            d = [r[k] - ref[r["name"]][k] for r in m["per_image"] if k in r and k in ref.get(r["name"], {})]
            m["diff"][k] = bootstrap_ci(d, n_boot=n_boot)
    return per_keys, set_keys


def bar_chart(models: list[dict], per_keys: list[str], set_keys: list[str], path: Path) -> Path:
    """One panel per metric, one bar per model; per-image metrics carry their 95% bootstrap CI as error bars."""
    from matplotlib.figure import Figure

    keys = [*per_keys, *set_keys]
    cols = min(4, max(1, len(keys)))
    rows = math.ceil(len(keys) / cols) if keys else 1
    fig = Figure(figsize=(3.2 * cols, 2.8 * rows + 0.4), layout="constrained")
    colors = [f"C{i % 10}" for i in range(len(models))]
    x = np.arange(len(models))
    for i, k in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        if k in per_keys:
            vals = np.array([m["ci"][k][0] for m in models], dtype=float)
            lo = np.array([m["ci"][k][1] for m in models], dtype=float)
            hi = np.array([m["ci"][k][2] for m in models], dtype=float)
            err = np.nan_to_num(np.vstack([vals - lo, hi - vals]), nan=0.0)
            ax.bar(x, np.nan_to_num(vals), color=colors, yerr=err, capsize=4)
        else:
            vals = np.array([_num(m["metrics"].get(k)) for m in models], dtype=float)
            ax.bar(x, np.nan_to_num(vals), color=colors)
        better = "lower" if k in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{k} ({better} is better)", fontsize=9)
        ax.set_xticks(x, [m["name"] for m in models], rotation=30, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle("per-image metrics: mean with 95% bootstrap CI; set metrics: one value", fontsize=9)
    fig.savefig(path, dpi=100)
    return path


def _num(v) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v is not None else math.nan


def _fmt(v: float, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}g}"


def _td(text: str, value=None, cls: str = "num") -> str:
    v = _num(value)
    key = f' data-v="{v!r}"' if math.isfinite(v) else ""
    return f'<td class="{cls}"{key}>{html.escape(text)}</td>'


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h2{margin-top:1.5em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}
th{background:#f2f2f2}#grid th{position:sticky;top:0;z-index:1}th.sortable{cursor:pointer}th.sorted{background:#dde8ff}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid img{width:160px;image-rendering:pixelated;display:block}.ci{color:#666;font-size:85%}
.controls{margin:.6em 0}.controls select,.controls button{font-size:1em;margin-right:.5em}
.protocol td{font-size:90%}
"""
# Sorting: clicking a header of a .sortable table (best first: descending where higher is better, else ascending;
# a second click flips it), or the select + direction button of the grid. Cells carry the value in data-v (missing
# values sort last either way).
_JS = """
function sortRows(table, col, asc) {
  const tb = table.tBodies[0], rows = [...tb.rows];
  const val = r => { const c = r.cells[col]; return c && c.dataset.v !== undefined ? parseFloat(c.dataset.v) : null; };
  const txt = r => r.cells[col] ? r.cells[col].textContent : "";
  rows.sort((a, b) => {
    const x = val(a), y = val(b);
    if (x === null && y === null) return (txt(a) > txt(b) ? 1 : txt(a) < txt(b) ? -1 : 0) * (asc ? 1 : -1);
    if (x === null) return 1; if (y === null) return -1;
    return (x - y) * (asc ? 1 : -1);
  });
  rows.forEach(r => tb.appendChild(r));
  table.querySelectorAll("th").forEach((th, i) => th.classList.toggle("sorted", i === col));
  table.dataset.sortCol = col; table.dataset.sortAsc = asc ? "1" : "0";
}
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("th.sortable").forEach(th => th.addEventListener("click", () => {
    const col = th.cellIndex, same = table.dataset.sortCol == col;
    sortRows(table, col, same ? table.dataset.sortAsc !== "1" : th.dataset.better !== "higher");
    if (table.id === "grid") {  // keep the menu and the direction button in step with the column clicked
      key.value = String(col);
      dir.dataset.asc = table.dataset.sortAsc;
      dir.textContent = dir.dataset.asc === "1" ? "ascending" : "descending";
    }
  }));
});
const grid = document.getElementById("grid"), key = document.getElementById("sortkey"),
      dir = document.getElementById("sortdir");
function applyGridSort() {
  const col = parseInt(key.value, 10);
  if (!isNaN(col)) sortRows(grid, col, dir.dataset.asc === "1");
}
key.addEventListener("change", () => {
  const th = grid.tHead.rows[0].cells[parseInt(key.value, 10)];
  dir.dataset.asc = th && th.dataset.better === "lower" ? "1" : "0";
  dir.textContent = dir.dataset.asc === "1" ? "ascending" : "descending";
  applyGridSort();
});
dir.addEventListener("click", () => {
  dir.dataset.asc = dir.dataset.asc === "1" ? "0" : "1";
  dir.textContent = dir.dataset.asc === "1" ? "ascending" : "descending";
  applyGridSort();
});
"""


def write_compare_report(
    out: str | Path,
    models: list[dict],
    data: str = "",
    n_boot: int = 1000,
    ratings_dbs: Sequence[str] = (),
    title: str = "pixtrans compare",
) -> Path:
    """Write ``index.html``, ``metrics.png`` and ``compare.json`` for ``models`` (dicts as :func:`run_compare`
    builds: name, family, checkpoint, params, size, metrics, per_image rows with image paths relative to ``dir``,
    dir, ratings). Returns the HTML path."""
    from .scores import PROTOCOL, json_safe_tree

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_keys, set_keys = summarise(models, n_boot)
    bar_chart(models, per_keys, set_keys, out / "metrics.png")
    has_ratings = any(m.get("ratings") for m in models)
    p: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(models)} models on <code>{html.escape(data)}</code>; "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}. 95% confidence intervals: percentile bootstrap over "
        f"the test images ({n_boot} resamples, seed 0); Δ: paired difference to the first model over the same images. "
        "Each model is tested at its own preprocessing size.</p>",
        "<h2>Metrics</h2>",
        '<table class="sortable" id="metrics"><thead><tr>',
    ]
    heads = [("model", None), ("family", None), ("size", None), ("params", "higher")]
    heads += [(k, "lower" if k in LOWER_IS_BETTER else "higher") for k in [*per_keys, *set_keys]]
    if has_ratings:
        heads += [("rating: translation", "higher"), ("rating: difference", "higher"), ("ratings n", "higher")]
    p += [
        f'<th class="sortable" data-better="{b or "higher"}">{html.escape(h)}'
        + (f" {'↓' if b == 'lower' else '↑'}" if b and h != "params" and not h.startswith("ratings n") else "")
        + "</th>"
        for h, b in heads
    ]
    p.append("</tr></thead><tbody>")
    for m in models:
        cells = [
            f'<td class="txt" title="{html.escape(m["checkpoint"])}">{html.escape(m["name"])}</td>',
            f'<td class="txt">{html.escape(m["family"])}</td>',
            f'<td class="txt">{html.escape(str(m.get("size", "")))}</td>',
            _td(f"{m['params'] / 1e6:.2f} M", m["params"]),
        ]
        for k in per_keys:
            mean, lo, hi, n = m["ci"][k]
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(lo) else "[–]"
            v = _num(mean)
            key = f' data-v="{v!r}"' if math.isfinite(v) else ""
            diff = ""
            if m.get("diff") and m["diff"][k][3]:
                d, dlo, dhi, _ = m["diff"][k]
                dci = f" [{dlo:+.3g}, {dhi:+.3g}]" if math.isfinite(dlo) else ""
                diff = f'<br><span class="ci">Δ vs {html.escape(models[0]["name"])}: {d:+.3g}{dci}</span>'
            cells.append(f'<td class="num"{key}>{_fmt(mean)} <span class="ci">{ci} n={n}</span>{diff}</td>')
        for k in set_keys:
            v = _num(m["metrics"].get(k))
            extra = (
                f" ± {_fmt(_num(m['metrics'].get('kid_std')), 2)}" if k == "kid" and m["metrics"].get("kid_std") else ""
            )
            cells.append(_td(_fmt(v) + extra, v))
        if has_ratings:
            r = m.get("ratings")
            if r:
                star = "*" if r["other_checkpoint"] else ""
                cells.append(
                    _td(f"{r['translation_mean']:.2f} ± {r['translation_std']:.2f}{star}", r["translation_mean"])
                )
                cells.append(_td(f"{r['difference_mean']:.2f} ± {r['difference_std']:.2f}{star}", r["difference_mean"]))
                cells.append(_td(str(r["n"]), r["n"]))
            else:
                cells += [_td("–"), _td("–"), _td("0", 0)]
        p.append("<tr>" + "".join(cells) + "</tr>")
    p.append("</tbody></table>")
    if has_ratings:
        p.append(
            "<p>Human ratings from the studio (0-10: translation given input + output, difference once the target "
            "is shown), mean ± sample std; * = rated on another checkpoint of the same run. Databases: "
            + ", ".join(f"<code>{html.escape(d)}</code>" for d in ratings_dbs if Path(d).is_file())
            + "</p>"
        )
    notes = sorted({n for m in models for n in (m["metrics"].get("notes") or [])})
    if notes:
        p.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    p.append('<p><img src="metrics.png" alt="bar chart of the metrics" id="chart"></p>')
    p.append(
        '<h2>Protocol</h2><table class="protocol"><tr><th>metric</th><th>aggregate</th><th>range</th><th>how</th></tr>'
    )
    for k in [*per_keys, *set_keys]:
        d = PROTOCOL.get(k, {})
        p.append(
            f"<tr><td>{k}</td><td>{html.escape(d.get('aggregate', ''))}</td><td>{html.escape(d.get('range', ''))}</td>"
            f"<td>{html.escape(d.get('how', ''))}</td></tr>"
        )
    p.append("</table>")
    p += _grid(models, per_keys)
    p.append(f"<script>{_JS}</script></body></html>")
    path = out / "index.html"
    path.write_text("\n".join(p), encoding="utf-8")
    summary = {
        "data": data,
        "n_boot": n_boot,
        "models": [
            {k: m.get(k) for k in ("name", "family", "checkpoint", "params", "size", "ratings")}
            | {"metrics": {k: v for k, v in m["metrics"].items() if k != "protocol"}}
            | {"ci95": {k: dict(zip(("mean", "low", "high", "n"), m["ci"][k])) for k in per_keys}}
            | {"diff_vs_first": {k: dict(zip(("mean", "low", "high", "n"), v)) for k, v in m.get("diff", {}).items()}}
            for m in models
        ],
        "protocol": {k: PROTOCOL[k] for k in [*per_keys, *set_keys] if k in PROTOCOL},
    }
    (out / "compare.json").write_text(json.dumps(json_safe_tree(summary), indent=2, default=str))
    return path


def _img(src: str | None) -> str:
    if not src:
        return "<td></td>"
    return f'<td><a href="{src}"><img src="{src}" loading="lazy" alt=""></a></td>'


def _grid(models: list[dict], per_keys: list[str]) -> list[str]:
    """The per-image table: name | input | one output per model | target | each metric of each model."""
    by_name: list[dict[str, dict]] = [{r["name"]: r for r in m["per_image"]} for m in models]
    names: list[str] = []
    for m in models:
        names += [r["name"] for r in m["per_image"] if r["name"] not in names]
    metric_cols = [(k, i) for k in per_keys for i in range(len(models))]
    n_fixed = 2 + len(models) + 1
    opts = ['<option value="0">name</option>']
    opts += [
        f'<option value="{n_fixed + j}">{html.escape(k)} · {html.escape(models[i]["name"])}</option>'
        for j, (k, i) in enumerate(metric_cols)
    ]
    p = [
        "<h2>Per image</h2>",
        '<div class="controls"><label>sort by <select id="sortkey">' + "".join(opts) + "</select></label>"
        '<button id="sortdir" data-asc="1" type="button">ascending</button> (or click a column title)</div>',
        '<table class="sortable grid" id="grid"><thead><tr><th class="sortable">name</th><th>input</th>',
    ]
    p += [f"<th>{html.escape(m['name'])}<br><small>{html.escape(m['family'])}</small></th>" for m in models]
    p.append("<th>target</th>")
    for k, i in metric_cols:
        better = "lower" if k in LOWER_IS_BETTER else "higher"
        model = html.escape(models[i]["name"])
        p.append(
            f'<th class="sortable" data-better="{better}" data-metric="{k}" data-model="{model}">'
            f"{html.escape(k)}<br><small>{model}</small></th>"
        )
    p.append("</tr></thead><tbody>")
    for name in names:
        first = next((b[name] for b in by_name if name in b), {})
        src_of = next(((models[i]["dir"], b[name]) for i, b in enumerate(by_name) if name in b), ("", {}))
        inp = f"{src_of[0]}/{quote(first['input'])}" if first.get("input") else None
        tgt = f"{src_of[0]}/{quote(first['target'])}" if first.get("target") else None
        cells = [f'<td class="txt">{html.escape(name)}</td>', _img(inp)]
        for m, b in zip(models, by_name):
            r = b.get(name)
            cells.append(_img(f"{m['dir']}/{quote(r['output'])}" if r and r.get("output") else None))
        cells.append(_img(tgt))
        for k, i in metric_cols:
            r = by_name[i].get(name, {})
            v = r.get(k)
            cells.append(_td(_fmt(v) if v is not None else "–", v))
        p.append(f'<tr data-name="{html.escape(name)}">' + "".join(cells) + "</tr>")
    p.append("</tbody></table>")
    return p


# ---------------------------------------------------------------------------- CLI
def cmd_compare(a: argparse.Namespace) -> None:
    names = [n.strip() for n in a.names.split(",")] if a.names else None
    path = run_compare(
        a.runs,
        a.data,
        a.out,
        names=names,
        scores=score_options(a),
        ratings=a.ratings or None,
        max_items=a.max_items,
        device=a.device,
        n_boot=a.bootstrap,
    )
    print(f"report: {path}")


def add_commands(sub) -> None:
    c = sub.add_parser("compare", help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("runs", nargs="+", metavar="RUN", help="run or checkpoint folders (any family, any size)")
    c.add_argument("--data", required=True, help="the test set every run is scored on")
    c.add_argument("--out", required=True, help="report folder (index.html, metrics.png, compare.json)")
    c.add_argument("--names", default="", help="comma-separated labels (default: run folder names)")
    c.add_argument(
        "--ratings", action="append", default=[], metavar="DB", help="studio ratings.sqlite (default: each run's)"
    )
    c.add_argument("--max-items", type=int, default=0)
    c.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap resamples for the CIs")
    c.add_argument("--device", default="auto")
    add_score_args(c)
    c.set_defaults(fn=cmd_compare)
