"""Studio latency: time from pressing "Translate" to the output image shown, for a drawn 256x256 label map,
in headless Chromium against `pixtrans serve` (uvicorn) on this CPU. Models: the shipped synth configs at their
default widths (weights freshly initialised; speed does not depend on training)."""

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "tests")
import httpx
from playwright.sync_api import sync_playwright
from test_web_api import make_run

from pixtrans.data.synth import generate
from pixtrans.web.app import create_app
from pixtrans.web.headless import launch_chromium, serve_in_thread

threads = int(os.environ.get("THREADS", "2"))
tmp = Path(tempfile.mkdtemp())
data = generate(tmp / "synth", n=4, n_test=2, size=64, seed=0)
root = [f"data.root={data}"]
runs = {
    "pix2pix": make_run(tmp / "pix2pix", "pix2pix_synth.yaml", root),
    "pix2pixhd": make_run(tmp / "pix2pixhd", "pix2pixhd_synth.yaml", root, clusters=10),
    "spade": make_run(tmp / "spade", "spade_synth.yaml", root),
    "msg_unet": make_run(tmp / "msg_unet", "msg_unet_synth.yaml", root),
}
app = create_app(list(runs.values()), data, tmp / "r.sqlite", threads=threads)
res = {}
with serve_in_thread(app) as url, sync_playwright() as p:
    params = {m["id"]: m["params"] for m in httpx.get(f"{url}api/models").json()}
    ctx = launch_chromium(p, tempfile.mkdtemp(), height=1000)
    page = ctx.new_page()
    for sel in [[m] for m in runs] + [list(runs)]:
        page.goto(f"{url}#draw")
        page.evaluate("(ids) => localStorage.setItem('pixtrans.selected', JSON.stringify(ids))", sel)
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        page.uncheck("#auto-translate")
        page.fill("#canvas-w", "256")
        page.fill("#canvas-h", "256")
        page.click("#canvas-resize")
        box = page.locator("#draw-canvas").bounding_box()
        for cls, y in ((1, 0.7), (3, 0.3), (5, 0.8)):
            page.click(f"#palette button[data-class='{cls}']")
            page.mouse.move(box["x"] + 20, box["y"] + y * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] - 20, box["y"] + y * box["height"], steps=10)
            page.mouse.up()
        times, server = [], []
        for i in range(6):
            with page.expect_response("**/api/translate") as r:
                page.evaluate("() => { window.studioTiming = null; }")
                page.click("#translate-btn")
            page.wait_for_function("() => window.studioTiming !== null")
            if i:
                times.append(page.evaluate("() => window.studioTiming"))
                server.append(r.value.json()["seconds"] * 1000)
            assert r.value.json()["outputs"][0]["width"] == 256
        key = "+".join(sel)
        res[key] = {
            "median_ms": round(statistics.median(times)),
            "min_ms": round(min(times)),
            "server_ms": round(statistics.median(server)),
            "params": sum(params[m] for m in sel),
        }
        print(key, res[key], flush=True)
    ctx.close()
print(json.dumps({"threads": threads, "cpu": os.cpu_count(), "results": res}))
