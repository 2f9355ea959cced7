"""Live drawing in headless Chromium (Debian's, via Playwright) against `pixtrans serve` on this CPU: updates per
second while a scripted stroke is drawn (pointer moves at ~60 Hz for STROKE_S seconds; the share of them at full
resolution, the rest at 1/2 or 1/4, see livedraw.js) and the time from the last stroke (pointer up) to the
full-resolution image that shows it, on the in-page path (ONNX Runtime Web, WASM SIMD + threads) and the
server path, interleaved A/B per repetition in one process ("page_fullres": in page, never at reduced
resolution). Canvas 256x256 (the model's crop).

Models: the studio's default (what `pixtrans demo` trains: pix2pix U-Net, ngf 32, 6 downsamplings) and narrower
variants (ngf 16, 8) as "sized for live use"; weights freshly initialised (speed does not depend on training).

    .venv/bin/python benchmarks/browser_live.py            # REPS=2 STROKE_S=3 NGF=32,8 THREADS=2
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
from pixtrans.web.app import create_app
from pixtrans.web.headless import launch_chromium, serve_in_thread

REPS = int(os.environ.get("REPS", "2"))
STROKE_S = float(os.environ.get("STROKE_S", "3"))
NGFS = [int(v) for v in os.environ.get("NGF", "32,8").split(",")]
THREADS = int(os.environ.get("THREADS", "2"))
SIZE = 256
OUT = Path(os.environ.get("PIXTRANS_ARTIFACTS") or "artifacts") / "web_live"


def stroke(page, y0: float, y1: float) -> dict:
    """Draw one stroke across the canvas; -> updates/s during it and ms from pointer up to the updated image."""
    box = page.locator("#draw-canvas").bounding_box()
    x = lambda f: box["x"] + f * box["width"]  # noqa: E731
    y = lambda f: box["y"] + f * box["height"]  # noqa: E731
    page.mouse.move(x(0.05), y(y0))
    page.mouse.down()
    t_start = page.evaluate("() => performance.now()")
    n = max(2, int(STROKE_S * 60))
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        f = i / n
        page.mouse.move(x(0.05 + 0.9 * f), y(y0 + (y1 - y0) * f))
        time.sleep(max(0.0, t0 + i / 60 - time.perf_counter()))
    t_end = page.evaluate("() => performance.now()")
    page.mouse.up()
    page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && !document.hidden", timeout=60_000)
    s = page.evaluate("() => ({editAt: liveStats.editAt, shownAt: liveStats.shownAt, path: liveStats.path, "
                      "history: liveStats.history, scales: liveStats.scales})")  # fmt: skip
    during = [k for k, t in zip(s["scales"], s["history"]) if t_start <= t <= t_end]
    full = sum(k == 1 for k in during) / max(1, len(during))
    return {"fps": len(during) / ((t_end - t_start) / 1000), "latency_ms": s["shownAt"] - s["editAt"],
            "path": s["path"], "moves": n, "full_res_share": full}  # fmt: skip


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    data = generate(tmp / "synth", n=4, n_test=2, size=64, seed=0)
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    results = {}
    with sync_playwright() as p:
        ctx = launch_chromium(p, tempfile.mkdtemp(), height=1000)
        for ngf in NGFS:
            over = [f"data.root={data}", f"model.ngf={ngf}", f"model.ndf={ngf}", f"data.crop_size={SIZE}",
                    f"data.load_size={SIZE}"]  # fmt: skip
            run = make_run(tmp / f"ngf{ngf}", "pix2pix_synth.yaml", over)
            app = create_app([run], data, tmp / f"r{ngf}.sqlite", threads=THREADS)
            mid = next(iter(app.state.studio.models))
            with serve_in_thread(app) as url:
                page = ctx.new_page()
                page.goto(f"{url}#draw")
                page.wait_for_selector("body[data-ready='1']")
                page.uncheck("#auto-translate")
                t0 = time.perf_counter()
                page.click("#palette button[data-class='1']")
                stroke(page, 0.9, 0.9)
                page.wait_for_selector("#live-path[data-path='page']", timeout=600_000)
                ready_s = time.perf_counter() - t0
                page.evaluate("() => { window.__engine = LiveDraw.engines[Draw.model.id]; }")
                info = page.evaluate("(id) => fetch(`api/models/${id}/web`).then((r) => r.json())", mid)
                rows = {"page": [], "page_fullres": [], "server": []}
                for rep in range(REPS):
                    for mode in list(rows) if rep % 2 == 0 else list(rows)[::-1]:
                        path = mode.split("_")[0]
                        engine = "window.__engine" if path == "page" else "{why: 'server path forced by the benchmark'}"
                        budget = "Infinity" if mode.endswith("fullres") else "150"
                        page.evaluate(
                            f"() => {{ LiveDraw.engines[Draw.model.id] = {engine}; LiveDraw.budgetMs = {budget}; }}"
                        )
                        page.click(f"#palette button[data-class='{(rep % 3) + 3}']")
                        r = stroke(page, 0.2 + 0.1 * rep, 0.7 - 0.1 * rep)
                        assert r["path"] == path, (r, path)
                        rows[mode].append(r)
                        print(ngf, mode, {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()},
                              flush=True)  # fmt: skip
                page.screenshot(path=str(OUT / f"live_ngf{ngf}.png"), full_page=True)
                page.close()
            side = info["sidecar"]
            results[f"pix2pix unet ngf{ngf}"] = {
                "params": app.state.studio.models[mid].info()["params"],
                "model_mb": round(side["model_bytes"] / 2**20, 2),
                "in_page_ready_s": round(ready_s, 1),
            }
            for path, v in rows.items():
                share = statistics.median(r["full_res_share"] for r in v)
                results[f"pix2pix unet ngf{ngf}"][f"{path}_full_res_share"] = round(share, 2)
                results[f"pix2pix unet ngf{ngf}"][f"{path}_fps"] = round(statistics.median(r["fps"] for r in v), 2)
                results[f"pix2pix unet ngf{ngf}"][f"{path}_latency_ms"] = round(
                    statistics.median(r["latency_ms"] for r in v)
                )
            print(json.dumps(results[f"pix2pix unet ngf{ngf}"]), flush=True)
        ctx.close()
    summary = {"size": [SIZE, SIZE], "threads_server": THREADS, "cpu": os.cpu_count(), "reps": REPS,
               "stroke_s": STROKE_S, "loadavg_before": [round(v, 2) for v in load_before],
               "loadavg_after": [round(v, 2) for v in os.getloadavg()], "results": results}  # fmt: skip
    (OUT / "browser_live.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
