"""Driving the studio headless: the app served from a background thread and Debian's Chromium launched through
Playwright (the browser tests and benchmarks/web_latency.py). Playwright itself is not a dependency of pixtrans."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # `apt-get install chromium`; Playwright's own download is not used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve_in_thread(app, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port from a daemon thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not srv.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the studio server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)


def launch_chromium(playwright, profile_dir: str | Path, width: int = 1400, height: int = 900, webgpu: bool = False):
    """A persistent headless Chromium context (Debian's binary, background networking off). ``webgpu``: GPU on and
    ``--enable-unsafe-webgpu`` (without a GPU, Chromium's adapter is SwiftShader, WebGPU emulated on the CPU)."""
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--enable-unsafe-webgpu"] if webgpu else CHROMIUM_ARGS
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=args,
        viewport={"width": width, "height": height},
    )
