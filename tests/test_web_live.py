"""Live drawing in real headless Chromium: the studio translates while a stroke is drawn, in the page (ONNX Runtime
Web, cross-origin isolated, WASM threads) with the same pixels as the server's fp32 result (PSNR >= 45 dB); the
exported static page (`pixtrans export --format web`) draws, uploads and downloads from a plain static file server,
with WASM or (``--webgpu``, SwiftShader's adapter) WebGPU, same pixels as PyTorch; the full-resolution update after a
stroke goes to the path (page or server) measured faster.
Screenshots go to ``$PIXTRANS_ARTIFACTS`` (default ``artifacts/``) under ``web_live/``."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import artifacts_dir
from PIL import Image

from pixtrans.web.headless import CHROMIUM, serve_in_thread
from pixtrans.web.ort_runtime import installed

pytestmark = [pytest.mark.browser, pytest.mark.slow]
if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
if installed() is None:
    pytest.skip("needs ONNX Runtime Web (make install, which needs npm)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")

from test_web_api import LOCAL, TINY, make_run, make_runs  # noqa: E402

from pixtrans.infer.web_export import build_feeds, export_web  # noqa: E402
from pixtrans.web.app import create_app  # noqa: E402

CANVAS_PIXELS = """(sel) => {
  const c = document.querySelector(sel);
  return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
}"""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def rgba(values: list[int], w: int, h: int) -> np.ndarray:
    return np.asarray(values, np.uint8).reshape(h, w, 4)[..., :3]


def stroke(page, selector: str, points: list[tuple[float, float]], steps: int = 8) -> None:
    box = page.locator(selector).bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir("web_live")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_root):
    """The API tests' tiny runs, plus a pix2pix whose untrained output is not flat grey (larger init), so that
    comparing pixels means something."""
    base = tmp_path_factory.mktemp("web_live")
    out = make_runs(base, synth_root)
    over = [f"data.root={synth_root}", *TINY, "model.num_downs=5", "model.init_type=xavier", "model.init_gain=1.0"]
    out["vivid"] = make_run(base / "vivid", "pix2pix_synth.yaml", over)
    return out


def new_page(browser):
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(120_000)
    return pg, errors


def test_studio_live_in_page_same_pixels_as_server(browser, runs, synth_root, tmp_path, artifacts):
    import httpx

    app = create_app([runs["vivid"], runs["hd"]], synth_root, tmp_path / "r.sqlite")
    with serve_in_thread(app) as url:
        page, errors = new_page(browser)
        page.goto(url + "#draw")
        page.wait_for_selector("body[data-ready='1']")
        page.evaluate("() => { LiveDraw.finalPath = 'page'; }")  # these pixels come from the page
        assert page.evaluate("() => crossOriginIsolated") is True  # COOP/COEP: WASM threads allowed
        assert page.is_checked("#live") and page.is_visible("#live-card")
        page.uncheck("#auto-translate")
        page.click("#palette button[data-class='1']")
        stroke(page, "#draw-canvas", [(0.05, 0.9), (0.5, 0.5), (0.95, 0.9)])
        page.wait_for_selector("#live-path[data-path='page']")  # once the in-page model is ready
        page.click("#palette button[data-class='3']")
        with page.expect_request("**/api/translate") as manual:  # live updates never look like a manual translate
            stroke(page, "#draw-canvas", [(0.2, 0.2), (0.8, 0.3)], steps=16)
            page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && liveStats.path === 'page'")
            page.click("#translate-btn")
        assert "live=1" not in manual.value.url
        stats = page.evaluate("() => ({...liveStats, history: null})")
        assert stats["page"] >= 2, stats
        badge = page.inner_text("#live-path")
        assert badge.startswith("in page · WASM"), badge
        page.screenshot(path=str(artifacts / "studio_live.png"), full_page=True)

        # same label map through the server (fp32 torch) -> PNG; in-page canvas pixels
        w, h = page.evaluate("() => [Draw.w, Draw.h]")
        label = np.asarray(page.evaluate("() => Array.from(Draw.label)"), np.uint8).reshape(h, w)
        assert len(np.unique(label)) == 3
        live = rgba(page.evaluate(CANVAS_PIXELS, "#live-canvas"), w, h)
        body = {"label": {"width": w, "height": h, "dtype": "u8", "data": base64.b64encode(label.tobytes()).decode()},
                "models": ["vivid"], "fit": "full"}  # fmt: skip
        out = httpx.post(url + "api/translate", json=body, timeout=60).json()["outputs"][0]
        server = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["image"].split(",", 1)[1]))).convert("RGB"))
        assert server.shape == live.shape and server.std() > 10, server.std()
        assert psnr(live, server) >= 45.0, psnr(live, server)
        (artifacts / "same_pixels.json").write_text(json.dumps({"model": "vivid (pix2pix, ngf 8)", "size": [w, h],
            "psnr_db": psnr(live, server), "max_abs": int(np.abs(live.astype(int) - server).max())}))  # fmt: skip

        # the server path when the in-page model cannot run: the badge says so
        page.evaluate("() => { document.querySelector('#live').click(); }")
        assert not page.is_visible("#live-card")
        page.close()
        assert not errors, errors


def test_web_model_endpoint_and_isolation_headers(runs, synth_root, tmp_path):
    from fastapi.testclient import TestClient

    app = create_app([runs["p2p"]], synth_root, tmp_path / "r.sqlite")
    with TestClient(app, **LOCAL) as c:
        r = c.get("/")
        assert r.headers["cross-origin-opener-policy"] == "same-origin"
        assert r.headers["cross-origin-embedder-policy"] == "require-corp"
        assert "cross-origin-embedder-policy" not in c.get("/docs").headers
        assert c.get("/api/models/p2p/model.onnx").status_code == 404  # not exported yet
        info = c.get("/api/models/p2p/web").json()
        assert info["available"] and info["runtime"] == installed() and info["sidecar"]["label_nc"] == 8
        onnx = c.get(info["url"] if info["url"].startswith("/") else "/" + info["url"])
        assert onnx.status_code == 200 and len(onnx.content) > 1000
        assert c.get("/api/models/nope/web").status_code == 422


# ------------------------------------------------------------------------------------------ exported page
@pytest.fixture
def static_server(tmp_path):
    """A plain static file server (like `python -m http.server`: no COOP/COEP headers) over a folder."""

    def serve(folder: Path):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a: None
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    servers: list = []
    yield serve
    for s in servers:
        s.shutdown()


def test_exported_page_draws_uploads_downloads(browser, runs, tmp_path, static_server, artifacts):
    import onnxruntime as ort

    out = tmp_path / "page"
    report = export_web(runs["vivid"], out, log=lambda *a: None)
    assert report["model_mb"] > 0 and report["total_mb"] > report["runtime_mb"] > 1
    assert {p.name for p in out.iterdir()} >= {"index.html", "model.onnx", "model.json", "serve.py", "js", "ort"}
    assert report["backends"] == ["wasm"] and report["webgpu_mb"] > 1  # WASM only by default: --webgpu adds it
    assert not (out / "ort" / "ort.webgpu.min.mjs").exists()
    url = static_server(out)
    page, errors = new_page(browser)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("() => crossOriginIsolated") is False
    assert "1 thread" in page.inner_text("#meta")
    assert page.evaluate("() => pageState.model.bytes === null")  # one session: the graph's copy is released
    page.click("#palette button[data-class='3']")
    stroke(page, "#draw", [(0.1, 0.2), (0.9, 0.6)])
    page.wait_for_function("() => pageState.shownSeq === pageState.seq && !pageState.busy")
    w, h = page.evaluate("() => [pageState.w, pageState.h]")
    label = np.asarray(page.evaluate("() => Array.from(pageState.label)"), np.int64).reshape(h, w)
    assert set(np.unique(label)) == {0, 3}
    shown = rgba(page.evaluate(CANVAS_PIXELS, "#out"), w, h)
    side = json.loads((out / "model.json").read_text())
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, build_feeds(side, label))[0][0]
    ref = np.clip((y + 1) * 127.5, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
    assert ref.std() > 10 and psnr(shown, ref) >= 45.0, (ref.std(), psnr(shown, ref))
    page.screenshot(path=str(artifacts / "exported_page.png"), full_page=True)

    ids = np.zeros((h, w), np.uint8)
    ids[h // 2 :] = 1
    Image.fromarray(ids).save(tmp_path / "map.png")
    seq = page.evaluate("() => pageState.seq")
    page.set_input_files("#upload", str(tmp_path / "map.png"))
    page.wait_for_function("(s) => pageState.shownSeq > s && !pageState.busy", arg=seq)
    assert np.array_equal(np.asarray(page.evaluate("() => Array.from(pageState.label)")).reshape(h, w), ids)
    with page.expect_download() as dl:
        page.click("#dl-out")
    saved = tmp_path / "output.png"
    dl.value.save_as(saved)
    assert Image.open(saved).size == (w, h)
    page.close()
    assert not errors, errors


# ------------------------------------------------------------------------------------------ in-page backends
def live_vs_server(page, url: str, model: str) -> tuple[float, dict]:
    """Draw two strokes, wait for the in-page full-resolution update; -> (PSNR of the live canvas against the server's
    fp32 output for the same map, the badge's attributes)."""
    import httpx

    page.goto(url + "#draw")
    page.wait_for_selector("body[data-ready='1']")
    page.evaluate("() => { LiveDraw.finalPath = 'page'; }")  # these pixels come from the page
    page.uncheck("#auto-translate")
    page.click("#palette button[data-class='1']")
    stroke(page, "#draw-canvas", [(0.05, 0.9), (0.5, 0.5), (0.95, 0.9)])
    page.wait_for_selector("#live-path[data-path='page']")
    page.click("#palette button[data-class='3']")
    stroke(page, "#draw-canvas", [(0.2, 0.2), (0.8, 0.3)], steps=16)
    page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && liveStats.path === 'page'")
    badge = page.evaluate("() => { const b = document.querySelector('#live-path'); "
                          "return {backend: b.dataset.backend, text: b.textContent, title: b.title}; }")  # fmt: skip
    w, h = page.evaluate("() => [Draw.w, Draw.h]")
    label = np.asarray(page.evaluate("() => Array.from(Draw.label)"), np.uint8).reshape(h, w)
    live = rgba(page.evaluate(CANVAS_PIXELS, "#live-canvas"), w, h)
    body = {"label": {"width": w, "height": h, "dtype": "u8", "data": base64.b64encode(label.tobytes()).decode()},
            "models": [model], "fit": "full"}  # fmt: skip
    out = httpx.post(url + "api/translate", json=body, timeout=60).json()["outputs"][0]
    server = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["image"].split(",", 1)[1]))).convert("RGB"))
    assert server.shape == live.shape and server.std() > 10, server.std()
    return psnr(live, server), badge


def test_live_falls_back_to_wasm_without_webgpu(browser, runs, synth_root, tmp_path):
    """The studio offers WebGPU (its files are installed) but this Chromium has no adapter (--disable-gpu): WASM runs,
    the badge says so and why."""
    from pixtrans.web.ort_runtime import backends

    if "webgpu" not in backends():
        pytest.skip("ONNX Runtime Web's WebGPU build is not installed (make install)")
    app = create_app([runs["vivid"]], synth_root, tmp_path / "r.sqlite")
    with serve_in_thread(app) as url:
        page, errors = new_page(browser)
        page.goto(url)
        assert page.evaluate("async () => !navigator.gpu || !(await navigator.gpu.requestAdapter())")
        db, badge = live_vs_server(page, url, "vivid")
        assert badge["backend"] == "wasm" and badge["text"].startswith("in page · WASM"), badge
        assert badge["title"] == "no WebGPU adapter", badge
        assert db >= 45.0, db
        page.close()
        assert not errors, errors


def in_own_thread(fn):
    """Run ``fn()`` on a fresh thread (a second Playwright instance cannot start on the thread of the module's
    ``browser``, whose event loop is running) -> its result; its exception is raised here."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = err

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


ADAPTER = """async () => {
  const a = navigator.gpu && await navigator.gpu.requestAdapter();
  return a ? (a.info.architecture || a.info.vendor || "?") : null;
}"""


def on_webgpu(tmp_path: Path, url: str, fn):
    """``fn(page)`` on ``url`` in a Chromium with --enable-unsafe-webgpu and the GPU process on (SwiftShader's CPU
    adapter when there is no GPU), in its own thread; -> (adapter, fn's result, page errors). Skips the test when this
    Chromium gives no adapter."""
    from playwright.sync_api import sync_playwright

    from pixtrans.web.headless import launch_chromium

    def check():
        with sync_playwright() as p:
            ctx = launch_chromium(p, tmp_path / "chromium_webgpu", webgpu=True)
            try:
                page, errors = new_page(ctx)
                page.goto(url)
                adapter = page.evaluate(ADAPTER)
                if adapter is None:
                    return None
                res = fn(page)
                page.close()
                return adapter, res, errors
            finally:
                ctx.close()

    res = in_own_thread(check)
    if res is None:
        pytest.skip("this Chromium gives no WebGPU adapter even with --enable-unsafe-webgpu")
    return res


def test_live_webgpu_same_pixels_as_server(runs, synth_root, tmp_path, artifacts):
    """The live image comes from ONNX Runtime Web's WebGPU provider, same pixels as the server's fp32 output."""
    from pixtrans.web.ort_runtime import backends

    if "webgpu" not in backends():
        pytest.skip("ONNX Runtime Web's WebGPU build is not installed (make install)")
    app = create_app([runs["vivid"]], synth_root, tmp_path / "r.sqlite")
    with serve_in_thread(app) as url:
        adapter, (db, badge), errors = on_webgpu(tmp_path, url, lambda page: live_vs_server(page, url, "vivid"))
    assert badge["backend"] == "webgpu" and badge["text"].startswith("in page · WebGPU"), badge
    assert db >= 45.0, db
    assert not errors, errors
    (artifacts / "same_pixels_webgpu.json").write_text(json.dumps({"adapter": adapter, "psnr_db": db}))


# ------------------------------------------------------------------------------------------ exported page, WebGPU
def page_vs_torch(page, url: str, run: Path, side: dict) -> tuple[float, str, str]:
    """Open the exported page, draw a stroke, wait for its image; -> (PSNR against the PyTorch fp32 generator on the
    same map, body[data-backend], the backend note)."""
    import torch

    import pixtrans

    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("() => pageState.model.bytes === null")
    page.click("#palette button[data-class='3']")
    stroke(page, "#draw", [(0.1, 0.2), (0.9, 0.6)])
    page.wait_for_function("() => pageState.shownSeq === pageState.seq && !pageState.busy")
    w, h = page.evaluate("() => [pageState.w, pageState.h]")
    label = np.asarray(page.evaluate("() => Array.from(pageState.label)"), np.int64).reshape(h, w)
    shown = rgba(page.evaluate(CANVAS_PIXELS, "#out"), w, h)
    t = pixtrans.load(run, device="cpu")
    with torch.no_grad():
        y = t.model.inference_module().float().eval()(*map(torch.from_numpy, build_feeds(side, label).values()))
    ref = np.clip((y[0].numpy() + 1) * 127.5, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
    assert ref.std() > 10, ref.std()
    return psnr(shown, ref), page.evaluate("() => document.body.dataset.backend"), page.get_attribute("#meta", "title")


@pytest.fixture(scope="module")
def webgpu_page(runs, tmp_path_factory):
    from pixtrans.web.ort_runtime import backends

    if "webgpu" not in backends():
        pytest.skip("ONNX Runtime Web's WebGPU build is not installed (make install)")
    out = tmp_path_factory.mktemp("webgpu_page")
    report = export_web(runs["vivid"], out, webgpu=True, log=lambda *a: None)
    assert report["backends"] == ["webgpu", "wasm"] and (out / "ort" / "ort.webgpu.min.mjs").is_file()
    assert report["runtime_mb"] > report["webgpu_mb"] > 20
    return out


def test_exported_page_webgpu_build_falls_back_to_wasm(browser, runs, webgpu_page, static_server):
    """--webgpu page in a Chromium without an adapter: the shared live.js runs WASM and says why."""
    page, errors = new_page(browser)
    db, backend, note = page_vs_torch(page, static_server(webgpu_page), runs["vivid"],
                                      json.loads((webgpu_page / "model.json").read_text()))  # fmt: skip
    assert backend == "wasm" and note == "no WebGPU adapter", (backend, note)
    assert db >= 45.0, db
    page.close()
    assert not errors, errors


def test_exported_page_webgpu_same_pixels_as_torch(runs, webgpu_page, static_server, tmp_path, artifacts):
    """--webgpu page in Chromium with --enable-unsafe-webgpu (SwiftShader without a GPU): WebGPU runs the model."""
    url = static_server(webgpu_page)
    side = json.loads((webgpu_page / "model.json").read_text())

    def run(page):
        res = page_vs_torch(page, url, runs["vivid"], side)
        page.screenshot(path=str(artifacts / "exported_page_webgpu.png"), full_page=True)
        return res

    adapter, (db, backend, _), errors = on_webgpu(tmp_path, url, run)
    assert backend == "webgpu", backend
    assert db >= 45.0, db
    assert not errors, errors
    (artifacts / "exported_page_webgpu.json").write_text(json.dumps({"adapter": adapter, "psnr_db": db}))


# ------------------------------------------------------------------------------------------ full-res path choice
def strokes_until(page, cond: str, limit: int = 8) -> None:
    """Draw short strokes (each waits for its last update) until ``cond`` (JS) holds."""
    for i in range(limit):
        if page.evaluate(cond):
            return
        stroke(page, "#draw-canvas", [(0.1, 0.1 + 0.1 * i), (0.9, 0.15 + 0.1 * i)], steps=4)
        page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && !LiveDraw.inFlight")
    assert page.evaluate(cond), page.evaluate("() => liveStats.full")


def final_update(page) -> dict:
    """One more stroke; -> its path, final path, badge and how many in-page updates ran while drawing."""
    before = page.evaluate("() => liveStats.page")
    stroke(page, "#draw-canvas", [(0.2, 0.5), (0.8, 0.55)], steps=8)
    page.wait_for_function("() => liveStats.shownSeq === liveStats.editSeq && !LiveDraw.inFlight")
    return page.evaluate(
        """(before) => { const b = document.querySelector('#live-path');
      return {path: liveStats.path, final: liveStats.final, scale: liveStats.scale, full: liveStats.full,
              pageUpdates: liveStats.page - before, badge: {...b.dataset}, text: b.textContent}; }""",
        before,
    )


def test_full_resolution_update_goes_to_the_faster_path(browser, runs, synth_root, tmp_path):
    """Live updates stay in the page; the full-resolution image after a stroke comes from the path whose median time
    is lower (made slow through LiveDraw.slowMs), and the badge says which one made it."""
    app = create_app([runs["vivid"]], synth_root, tmp_path / "r.sqlite")
    both = "() => LiveDraw.full.page.length >= 2 && LiveDraw.full.server.length >= 2"
    with serve_in_thread(app) as url:
        page, errors = new_page(browser)
        page.goto(url + "#draw")
        page.wait_for_selector("body[data-ready='1']")
        page.uncheck("#auto-translate")
        page.evaluate("() => { LiveDraw.slowMs.page = 1500; }")
        page.click("#palette button[data-class='1']")
        page.wait_for_function("() => liveStats.page >= 1 && !LiveDraw.inFlight")  # the in-page model is ready
        strokes_until(page, both)
        r = final_update(page)
        assert r["path"] == "server" and r["final"] == "server" and r["scale"] == 1, r
        assert r["full"]["server"] < r["full"]["page"], r
        assert r["badge"]["path"] == "server" and r["badge"]["final"] == "server" and "full res" in r["text"], r
        assert r["pageUpdates"] >= 1, r  # while drawing: in the page

        page.evaluate("() => { LiveDraw.slowMs = {page: 0, server: 1500}; LiveDraw.full = {page: [], server: []}; }")
        strokes_until(page, both)
        r = final_update(page)
        assert r["path"] == "page" and r["final"] == "page" and r["scale"] == 1, r
        assert r["full"]["page"] < r["full"]["server"], r
        assert r["badge"]["final"] == "page" and r["text"].startswith("in page · WASM"), r
        page.close()
        assert not errors, errors
