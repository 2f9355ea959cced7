"""Live drawing in headless Chromium (Debian's, via Playwright) against `pixtrans serve` on this CPU: updates per
second while a scripted stroke is drawn (pointer moves at ~60 Hz for STROKE_S seconds), the share of them at full
resolution (the rest at 1/2, 1/4 or 1/8, see livedraw.js), the time from the last stroke (pointer up) to the
full-resolution image that shows it, and where an in-page update's time goes (encode the map, inference, output to
pixels, draw), per mode, interleaved A/B per repetition in one process:

- ``page``: in page (ONNX Runtime Web, WASM SIMD + threads), the studio's policy: the finest of 1, 1/2, 1/4, 1/8
  whose measured update time fits the 200 ms frame budget, reduced scales on their own session; the full-resolution
  update after the stroke on the path (page or server) with the lower median full-resolution time;
- ``page_final_in_page``: the same with the full-resolution update always in the page (the previous policy);
- ``page_1session``: in page on one session for every size (the full size is planned again after a stroke);
- ``page_prev``: in page, the policy before that (halve down to 1/4 while an update takes over 150 ms, one session);
- ``page_fullres``: in page, never at reduced resolution (``FULLRES_MOVES`` pointer moves per stroke, not 60/s:
  every move waits for a ~2 s update);
- ``server``: PyTorch on the server (``THREADS`` threads), the studio's policy.

The other ``page*`` modes keep the full-resolution update in the page. Before the modes, short strokes let the studio
measure both paths at full resolution (two times each), as it does after a user's first strokes.

Canvas 256x256 (the model's crop). Models (``MODELS``, comma-separated): ``hd32`` the studio's default (what
`pixtrans demo` trains: pix2pixHD global generator, ngf 32, 3 downsamplings, 6 res blocks, instance-feature encoder;
the browser runs the generator, neutral style), ``hd16``/``hd8`` narrower variants sized for live use, ``unet32``/
``unet8`` the pix2pix U-Nets (6 downsamplings) measured before; weights freshly initialised (speed does not depend on
training).

    .venv/bin/python benchmarks/browser_live.py     # REPS=2 STROKE_S=3 MODELS=hd32,hd16 MODES=all THREADS=2
                                                    # FULLRES_MOVES=8
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from playwright.sync_api import sync_playwright
from test_web_api import make_run

from pixtrans.data.synth import generate
from pixtrans.demo import RECIPE
from pixtrans.web.app import create_app
from pixtrans.web.headless import launch_chromium, serve_in_thread

REPS = int(os.environ.get("REPS", "2"))
STROKE_S = float(os.environ.get("STROKE_S", "3"))
MODELS = os.environ.get("MODELS", "hd32,hd16").split(",")
THREADS = int(os.environ.get("THREADS", "2"))
FULLRES_MOVES = int(os.environ.get("FULLRES_MOVES", "8"))
SIZE = 256
OUT = Path(os.environ.get("PIXTRANS_ARTIFACTS") or "artifacts") / "web_live"
# mode -> (path, LiveDraw.budgetMs, LiveDraw.scales, preview session, LiveDraw.finalPath, pointer moves or None)
MODES = {
    "page": ("page", 200, [1, 2, 4, 8], True, "auto", None),
    "page_final_in_page": ("page", 200, [1, 2, 4, 8], True, "page", None),
    "page_1session": ("page", 200, [1, 2, 4, 8], False, "page", None),
    "page_prev": ("page", 150, [1, 2, 4], False, "page", None),
    "page_fullres": ("page", "Infinity", [1], False, "page", FULLRES_MOVES),
    "server": ("server", 200, [1, 2, 4, 8], False, "auto", None),
}
if os.environ.get("MODES", "all") != "all":
    MODES = {k: MODES[k] for k in os.environ["MODES"].split(",")}
# name -> (label, config, overrides)
VARIANTS = {
    **{
        f"hd{n}": (f"pix2pixHD global ngf {n}", "pix2pixhd_synth.yaml", [*RECIPE, f"model.ngf={n}", f"model.ndf={n}"])
        for n in (32, 16, 8)
    },
    **{
        f"unet{n}": (f"pix2pix U-Net ngf {n}", "pix2pix_synth.yaml", [f"model.ngf={n}", f"model.ndf={n}"])
        for n in (32, 8)
    },
}


def med(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def stroke(page, y0: float, y1: float, moves: int | None = None) -> dict:
    """Draw one stroke across the canvas (``moves`` pointer moves over STROKE_S s, default 60/s); -> updates/s during
    it, the scales used, ms from pointer up to the full-resolution image and which path made it, and the in-page time
    split (median over the stroke's updates, and the final update)."""
    box = page.locator("#draw-canvas").bounding_box()
    x = lambda f: box["x"] + f * box["width"]  # noqa: E731
    y = lambda f: box["y"] + f * box["height"]  # noqa: E731
    page.mouse.move(x(0.05), y(y0))
    page.mouse.down()
    t_start = page.evaluate("() => performance.now()")
    n = moves or max(2, int(STROKE_S * 60))
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        f = i / n
        page.mouse.move(x(0.05 + 0.9 * f), y(y0 + (y1 - y0) * f))
        time.sleep(max(0.0, t0 + i * STROKE_S / n - time.perf_counter()))
    t_end = page.evaluate("() => performance.now()")
    page.mouse.up()
    page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && !document.hidden", timeout=120_000)
    s = page.evaluate("() => ({editAt: liveStats.editAt, shownAt: liveStats.shownAt, path: liveStats.path, "
                      "history: liveStats.history, scales: liveStats.scales, parts: liveStats.parts, "
                      "backend: liveStats.backend, final: liveStats.final, full: liveStats.full})")  # fmt: skip
    during = [i for i, t in enumerate(s["history"]) if t_start <= t <= t_end]
    scales = [s["scales"][i] for i in during]
    split = {k: med([s["parts"][i][k] for i in during if k in s["parts"][i]])
             for k in ("encode", "infer", "output", "draw")}  # fmt: skip
    return {"fps": len(during) / ((t_end - t_start) / 1000), "latency_ms": s["shownAt"] - s["editAt"],
            "path": s["path"], "backend": s["backend"], "final": s["final"], "full_medians_ms": s["full"],
            "moves": n, "stroke_s": (t_end - t_start) / 1000,
            "full_res_share": sum(k == 1 for k in scales) / max(1, len(scales)),
            "scales": {str(k): scales.count(k) for k in sorted(set(scales))},
            "split_drawing_ms": split, "split_final_ms": s["parts"][-1], "final_scale": s["scales"][-1]}  # fmt: skip


def measure(ctx, tmp: Path, data: Path, name: str) -> dict:
    label, config, extra = VARIANTS[name]
    over = [*extra, f"data.root={data}", f"data.crop_size={SIZE}", f"data.load_size={SIZE}"]
    run = make_run(tmp / name, config, over)
    app = create_app([run], data, tmp / f"r_{name}.sqlite", threads=THREADS)
    mid = next(iter(app.state.studio.models))
    with serve_in_thread(app) as url:
        page = ctx.new_page()
        page.goto(f"{url}#draw")
        page.wait_for_selector("body[data-ready='1']")
        page.uncheck("#auto-translate")
        t0 = time.perf_counter()
        page.click("#palette button[data-class='1']")
        stroke(page, 0.9, 0.9)
        ready = "() => { const e = LiveDraw.engines[Draw.model.id]; return !!(e && e.preview) && !LiveDraw.inFlight; }"
        page.wait_for_function(ready, timeout=600_000)  # in-page model and its preview session ready, warmed up
        ready_s = time.perf_counter() - t0
        page.evaluate("() => { window.__engine = LiveDraw.engines[Draw.model.id]; "
                      "window.__preview = window.__engine.preview; }")  # fmt: skip
        warm = page.evaluate("() => ({...LiveDraw.msAt})")
        both = "() => LiveDraw.full.page.length >= 2 && LiveDraw.full.server.length >= 2"
        for i in range(6):  # short strokes until the studio has timed both paths at full resolution
            if page.evaluate(both):
                break
            stroke(page, 0.85 - 0.05 * i, 0.85 - 0.05 * i, moves=8)
        full_warm = page.evaluate("() => ({...LiveDraw.full})")
        info = page.evaluate("(id) => fetch(`api/models/${id}/web`).then((r) => r.json())", mid)
        rows = {m: [] for m in MODES}
        for rep in range(REPS):
            for mode in list(rows) if rep % 2 == 0 else list(rows)[::-1]:
                path, budget, scales, preview, final, moves = MODES[mode]
                engine = "window.__engine" if path == "page" else "{why: 'server path forced by the benchmark'}"
                page.evaluate(f"() => {{ LiveDraw.engines[Draw.model.id] = {engine}; LiveDraw.budgetMs = {budget}; "
                              f"LiveDraw.scales = {json.dumps(scales)}; LiveDraw.finalPath = '{final}'; "
                              f"window.__engine.preview = {'window.__preview' if preview else 'null'}; }}")  # fmt: skip
                page.click(f"#palette button[data-class='{(rep % 3) + 3}']")
                r = stroke(page, 0.2 + 0.1 * rep, 0.7 - 0.1 * rep, moves)
                want = final if final != "auto" else r["final"] if path == "page" else "server"
                assert r["path"] == want == r["final"] and r["final_scale"] == 1, (r, path)
                rows[mode].append(r)
                short = {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items() if k != "split_final_ms"}
                print(name, mode, short, flush=True)
        page.screenshot(path=str(OUT / f"live_{name}.png"), full_page=True)
        page.close()
    side = info["sidecar"]
    res = {
        "model": label,
        "params": app.state.studio.models[mid].info()["params"],
        "model_mb": round(side["model_bytes"] / 2**20, 2),
        "in_page_ready_s": round(ready_s, 1),
        "backend": rows[next(iter(rows))][0]["backend"] if rows else None,
        "warm_ms": {k: round(v) for k, v in warm.items()},
        "full_res_ms_before": {k: [round(t) for t in v] for k, v in full_warm.items()},
    }
    for mode, v in rows.items():
        res[mode] = {
            "fps": round(statistics.median(r["fps"] for r in v), 2),
            "full_res_share": round(statistics.median(r["full_res_share"] for r in v), 2),
            "latency_ms": round(statistics.median(r["latency_ms"] for r in v)),
            "stroke_s": round(statistics.median(r["stroke_s"] for r in v), 1),
            "final_path": [r["final"] for r in v],
            "full_medians_ms": v[-1]["full_medians_ms"],
            "scales": [r["scales"] for r in v],
        }
        if MODES[mode][0] == "page":
            res[mode]["split_drawing_ms"] = {k: med([r["split_drawing_ms"][k] for r in v if r["split_drawing_ms"][k]])
                                             for k in ("encode", "infer", "output", "draw")}  # fmt: skip
            res[mode]["split_final_ms"] = {k: med([r["split_final_ms"][k] for r in v if k in r["split_final_ms"]])
                                           for k in ("encode", "infer", "output", "draw")}  # fmt: skip
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    data = generate(tmp / "synth", n=4, n_test=2, size=64, seed=0)
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    results = {}
    with sync_playwright() as p:
        ctx = launch_chromium(p, tempfile.mkdtemp(), height=1000)
        for name in MODELS:
            results[name] = measure(ctx, tmp, data, name)
        ctx.close()
    summary = {"size": [SIZE, SIZE], "threads_server": THREADS, "cpu": os.cpu_count(), "reps": REPS,
               "stroke_s": STROKE_S, "loadavg_before": [round(v, 2) for v in load_before],
               "loadavg_after": [round(v, 2) for v in os.getloadavg()], "results": results}  # fmt: skip
    (OUT / "browser_live.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
