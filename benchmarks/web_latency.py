"""Studio latency: time from pressing "Translate" to the output image shown, for a drawn 256x256 label map,
in headless Chromium against `pixtrans serve` (uvicorn) on this CPU. Models: the shipped synth configs at their
default widths (weights freshly initialised; speed does not depend on training).

``python benchmarks/web_latency.py throughput``: no browser; drawn 256x256 label maps POSTed to /api/translate for
one model (``MODEL``: pix2pix (default), pix2pixhd, spade, msg_unet, or ``demo``: what ``pixtrans demo`` trains) on
``RUNTIME`` (torch (default), auto, onnxruntime, openvino), one
request at a time vs 16 concurrent clients, with dynamic batching (``--batch 8``) and without (``--batch 1``), rounds
interleaved (the server in this process, the clients in a child process); prints requests/s, the ratios, the server
process's CPU seconds per request (robust where other jobs load the machine) and the batch sizes that formed.
"""

import json
import os
import statistics
import sys
import tempfile
import time
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
if os.environ.get("MODEL") == "demo":  # what `pixtrans demo` trains (pix2pixHD global, ngf 32, 6 blocks)
    from pixtrans.demo import RECIPE

    runs["demo"] = make_run(tmp / "demo", "pix2pixhd_synth.yaml", [*root, *RECIPE, "model.ngf=32", "model.ndf=32"])

if sys.argv[1:] == ["throughput"]:
    import subprocess

    import numpy as np
    from test_web_api import ids_json

    model, clients, per_client = os.environ.get("MODEL", "pix2pix"), 16, int(os.environ.get("PER_CLIENT", "4"))
    rng = np.random.default_rng(0)
    maps = [np.kron(rng.integers(0, 6, (8, 8)), np.ones((32, 32), dtype=np.int64)) for _ in range(8)]
    bodies = [{"label": ids_json(m), "models": [model], "fit": "full"} for m in maps]
    rates: dict[str, list[float]] = {}
    servers = {}
    runtime = os.environ.get("RUNTIME", "torch")  # where the generator runs (auto: what pixtrans serve does)
    for batch in (1, 8):
        app = create_app([runs[model]], data, tmp / f"r{batch}.sqlite", threads=threads, max_pending=64, batch=batch,
                         runtime=runtime)  # fmt: skip
        servers[batch] = app

    def post(url, i):
        r = httpx.post(f"{url}api/translate", json=bodies[i % len(bodies)], timeout=600)
        assert r.status_code == 200, r.text
        return r.json()["outputs"][0]["width"]

    # the clients run in their own process (as browsers would): their threads do not contend with the server's
    # for this process's interpreter lock
    body_file = tmp / "bodies.json"
    body_file.write_text(json.dumps(bodies))
    client = (
        "import json, sys, httpx; from concurrent.futures import ThreadPoolExecutor\n"
        "url, n, k, bodies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.load(open(sys.argv[4]))\n"
        "def post(i):\n"
        "    r = httpx.post(url + 'api/translate', json=bodies[i % len(bodies)], timeout=600)\n"
        "    assert r.status_code == 200, r.text\n"
        "with ThreadPoolExecutor(k) as pool:\n"
        "    list(pool.map(post, range(n)))\n"
    )

    def load(url, n, n_clients):
        subprocess.run([sys.executable, "-c", client, url, str(n), str(n_clients), str(body_file)], check=True)

    import contextlib

    def batch_sizes() -> list[int]:
        return [s for m in servers[8].state.studio.models.values() for s in m.translator.backend.batches]

    sizes: list[int] = []
    cpu_ms: dict[str, list[float]] = {}

    with contextlib.ExitStack() as stack:
        urls = {b: stack.enter_context(serve_in_thread(a)) for b, a in servers.items()}
        for b in urls:
            post(urls[b], 0)  # warm-up
        for _ in range(int(os.environ.get("ROUNDS", "2"))):
            for mode, b, n_clients in (("one-at-a-time", 8, 1), ("16 clients, batch 1", 1, clients),
                                       ("16 clients, batch 8", 8, clients)):  # fmt: skip
                n = clients * per_client
                seen = len(batch_sizes())
                c0, t0 = time.process_time(), time.perf_counter()
                load(urls[b], n, n_clients)
                wall = time.perf_counter() - t0
                rates.setdefault(mode, []).append(n / wall)
                cpu_ms.setdefault(mode, []).append((time.process_time() - c0) / n * 1e3)
                if mode.endswith("batch 8"):
                    sizes.extend(batch_sizes()[seen:])
                print(mode, f"{rates[mode][-1]:.2f} req/s, server CPU {cpu_ms[mode][-1]:.0f} ms/request", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    base = med["one-at-a-time"]
    info = servers[8].state.studio.default_model().translator.runtime_info
    print(json.dumps({"model": model, "runtime": f"{info['runtime']} {info['precision']}", "threads": threads,
                      "cpu": os.cpu_count(), "requests_per_s": med,
                      "vs_one_at_a_time": {k: round(v / base, 2) for k, v in med.items()},
                      "server_cpu_ms_per_request": {k: round(statistics.median(v)) for k, v in cpu_ms.items()},
                      "mean_batch_16_clients": round(statistics.mean(sizes), 2) if sizes else None}))  # fmt: skip
    sys.exit(0)

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
