"""``pixtrans serve``: the web studio (FastAPI + uvicorn, loopback by default).

One page (``static/``, no CDN) over a typed JSON API (OpenAPI at ``/openapi.json``):

- ``GET /api/models`` every loaded checkpoint (family, label set and palette, resolution, parameters, styles);
- ``GET /api/samples``, ``GET /api/samples/{i}``, ``POST /api/samples/{i}/translate`` test samples of ``--data`` by
  index, translated by every model side by side with the ground truth and per-image PSNR/SSIM;
- ``POST /api/translate`` a drawn label map (base64 ids, optional instance map); ``POST /api/upload`` a label map or
  photo file of any size (resized to the model, translated whole, or tiled); ``POST /api/references`` a style photo;
- ``POST /api/labelmap.png`` ids -> PNG (ids or colours) for download;
- ``POST /api/rate/start`` -> ``/api/rate/{token}/translation`` -> ``/api/rate/{token}/difference`` the two-score
  rating flow, stored in SQLite; ``GET /api/ratings/summary`` (+ ``.csv``), ``GET /api/ratings.csv``.

Bad input is a JSON ``{"detail": message}`` with a 4xx status (every status documented with ``ErrorBody``);
translations run one at a time on a worker thread behind a bounded queue (429 when full), at most ``--max-mp-models``
megapixels x models per request (413). Only a loopback ``Host`` (or one given with ``--allow-host``) is answered, and
a POST needs ``Content-Type: application/json`` or ``X-Pixtrans: 1`` (no cross-site form posts).

The routes live in ``routes/`` (one ``APIRouter`` per concern), their bodies in ``schemas.py``; they get the shared
state (studio, queue, ratings, limits) from ``app.state`` through the dependencies of ``deps.py``.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import ConfigError, DataError, OutOfMemory, PixtransError, is_out_of_memory, out_of_memory
from . import uploads as U
from .deps import Limits
from .livemodels import WebModels
from .ratings import RatingsDB
from .routes import ROUTERS
from .routes.models import STATIC
from .schemas import errors
from .studio import BatchingBackend, Busy, InferenceQueue, Studio, load_models, oom_message


# ---------------------------------------------------------------------------- request size guard
class BodyLimit:
    """ASGI middleware: read a request body (declared or streamed) up to ``limit`` bytes before the app sees it;
    beyond that, answer 413 at once."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # client went away
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            if not msg.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send):
        body = json.dumps(
            {"detail": f"request body over the limit of {self.limit / 2**20:.1f} MB (--max-upload-mb)"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- host and cross-site guards
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8000`` -> ``::1``), lower-case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.index("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class Guard:
    """ASGI middleware against DNS rebinding and cross-site form posts: a request whose ``Host`` is not in
    ``allow_hosts`` (names without port; ``*`` allows any) is a 400; a POST/PUT/PATCH/DELETE must carry
    ``Content-Type: application/json`` or ``X-Pixtrans: 1`` (neither can be sent cross-site without a CORS preflight,
    which this server never grants), else 403."""

    def __init__(self, app, allow_hosts: list[str]):
        self.app = app
        self.any = "*" in allow_hosts
        self.hosts = {host_name(h) for h in allow_hosts if h != "*"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = host_name(headers.get(b"host", ""))
        if not self.any and host not in self.hosts:
            shown = "".join(c for c in host if c.isprintable())[:100]
            return await _refuse(
                send, 400, f"Host {shown!r} is not allowed; open the studio at a loopback address, or start it with "
                f"`pixtrans serve --allow-host {shown or 'NAME'}`",
            )  # fmt: skip
        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            ctype = headers.get(b"content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json" and headers.get(b"x-pixtrans") != "1":
                return await _refuse(
                    send, 403, "state-changing requests need `Content-Type: application/json` or an "
                    "`X-Pixtrans: 1` header (cross-site form posts are refused)",
                )  # fmt: skip
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- cross-origin isolation
class Isolation:
    """ASGI middleware: COOP/COEP headers on every response except the interactive docs (which load a CDN), so the
    page is cross-origin isolated and ONNX Runtime Web can use WASM threads (SharedArrayBuffer)."""

    HEADERS = [(b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in ("/docs", "/docs/oauth2-redirect"):
            return await self.app(scope, receive, send)

        async def send_isolated(msg):
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), *self.HEADERS]}
            await send(msg)

        await self.app(scope, receive, send_isolated)


# ---------------------------------------------------------------------------- errors
# Always {"detail": message}: a 4xx for the client's mistakes, 429 when the queue is full, 503 when memory ran out
# (the request is dropped, the server keeps serving), 500 otherwise.
async def _client_error(request: Request, err: U.ClientError):
    return JSONResponse({"detail": err.message}, status_code=err.status)


async def _busy(request: Request, err: Busy):
    return JSONResponse({"detail": str(err)}, status_code=429, headers={"Retry-After": "2"})


async def _invalid(request: Request, err: RequestValidationError):
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in err.errors()]
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": text or "invalid request", "errors": errors}, status_code=422)


async def _pixtrans_error(request: Request, err: PixtransError):
    status = 422 if isinstance(err, DataError) else 500
    return JSONResponse({"detail": str(err)}, status_code=status)


async def _out_of_memory(request: Request, err: OutOfMemory):
    return JSONResponse({"detail": oom_message(err)}, status_code=503, headers={"Retry-After": "5"})


async def _unexpected(request: Request, err: Exception):  # still JSON; the traceback goes to the server log
    if is_out_of_memory(err):
        return await _out_of_memory(request, out_of_memory(err, f"in {request.url.path}"))
    return JSONResponse({"detail": f"internal error: {type(err).__name__}: {err}"}, status_code=500)


ERROR_HANDLERS = {
    U.ClientError: _client_error,
    Busy: _busy,
    RequestValidationError: _invalid,
    OutOfMemory: _out_of_memory,
    MemoryError: _unexpected,
    PixtransError: _pixtrans_error,
    Exception: _unexpected,
}


# ---------------------------------------------------------------------------- the app
def default_ratings_path(checkpoint: str | Path) -> Path:
    """``ratings.sqlite`` in the run folder of ``checkpoint`` (or beside a bare checkpoint folder)."""
    from ..checkpoints import resolve_checkpoint

    ck = resolve_checkpoint(checkpoint)
    run = ck.parent.parent if ck.parent.name == "checkpoints" else ck
    return run / "ratings.sqlite"


@asynccontextmanager
async def _lifespan(app: FastAPI):
    yield
    app.state.queue.shutdown()
    app.state.web_models.close()


def create_app(
    checkpoints: list[str | Path],
    data: str | Path | None = None,
    ratings_db: str | Path | None = None,
    max_upload_mb: float = 20.0,
    max_pixels: int = 4096 * 4096,
    max_pending: int = 4,
    threads: int | None = None,
    device: str = "auto",
    runtime: str = "torch",
    precision: str = "auto",
    batch: int = 8,
    allow_hosts: list[str] | None = None,
    max_mp_models: float = 16.0,
) -> FastAPI:
    """The studio app for ``checkpoints`` (run or checkpoint folders), test samples from ``data``, ratings in
    ``ratings_db`` (default: ``ratings.sqlite`` in the first checkpoint's run folder). Models run on ``runtime`` at
    ``precision`` (:mod:`pixtrans.infer.runtimes`); concurrent requests for one model are batched (at most ``batch``
    items; 1 = off). Only requests whose ``Host`` is in ``allow_hosts`` (default: the loopback names; ``*``: any)
    are answered; one request may translate at most ``max_mp_models`` megapixels summed over its models."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    studio = Studio(load_models(checkpoints, device, runtime, precision), data, max_pixels=max_pixels)
    # two batches' worth of workers: the next batch prepares its inputs while one runs
    queue = InferenceQueue(max_pending, workers=2 * max(1, batch))
    for m in studio.models.values():
        if m.translator.backend is not None and batch > 1:
            m.translator.backend = BatchingBackend(m.translator.backend, queue, max_batch=batch)
    db_path = Path(ratings_db or default_ratings_path(checkpoints[0]))
    try:
        db = RatingsDB(db_path)
    except (OSError, sqlite3.Error) as err:
        raise ConfigError(f"ratings database {db_path}: cannot open it ({err}); pass --ratings FILE") from None
    limits = Limits(max_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels, max_mp_models=max_mp_models)

    app = FastAPI(
        title="pixtrans studio",
        version=_version(),
        lifespan=_lifespan,
        redoc_url=None,
        description="Translate label maps and photos with pix2pix, pix2pixHD, SPADE and MSG U-Net models.",
    )
    app.state.studio, app.state.queue, app.state.ratings = studio, queue, db
    app.state.limits = limits
    app.state.web_models = WebModels()
    app.add_middleware(BodyLimit, limit=int(limits.max_bytes * 1.4) + 2**16)
    app.add_middleware(Isolation)
    app.add_middleware(Guard, allow_hosts=[*LOOPBACK, *(allow_hosts or [])])
    for exc, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(exc, handler)
    for router in ROUTERS:
        app.include_router(router, responses=errors(400, 422, 500, 503))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _version() -> str:
    from ..version import __version__

    return __version__


# ---------------------------------------------------------------------------- command line
DEMO_RUN = Path("demo") / "run"  # where `pixtrans demo` (default --out demo) trains


def _find_runs() -> list[str]:
    """Runs under ./runs, then the demo's run (./demo/run), that hold a checkpoint."""
    runs = Path("runs")
    found = sorted(str(p) for p in runs.iterdir() if (p / "latest").is_file()) if runs.is_dir() else []
    return found + ([str(DEMO_RUN)] if (DEMO_RUN / "latest").is_file() else [])


def cmd_serve(a) -> None:
    import os

    import uvicorn

    checkpoints = list(a.checkpoints) or _find_runs()
    if not checkpoints:
        raise ConfigError(
            "pixtrans serve: give one or more run/checkpoint folders (none found under ./runs or ./demo/run); "
            "train one first, e.g. `pixtrans demo` (then run `pixtrans serve` in the same folder)"
        )
    threads = a.threads or max(1, min(4, os.cpu_count() or 1))
    app = create_app(
        checkpoints,
        a.data,
        a.ratings,
        max_upload_mb=a.max_upload_mb,
        max_pixels=a.max_pixels,
        max_pending=a.queue,
        threads=threads,
        device=a.device,
        runtime=a.runtime,
        precision=a.precision,
        batch=a.batch,
        allow_hosts=[a.host, *(a.allow_host or [])],
        max_mp_models=a.max_mp_models,
    )
    for m in app.state.studio.models.values():
        info = m.translator.runtime_info
        print(f"{m.id}: runtime {info['runtime']} {info['precision']}" + (" (auto)" if info.get("auto") else ""))
        for note in (info.get("note"), m.translator.tiling_note()):
            if note:
                print(f"{m.id}: note: {note.replace('tiled translation', 'fit tile', 1)}")
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {a.host}: anyone who can reach this address can use the studio")
        if not a.allow_host:
            print("note: requests are answered only for loopback names and the bound host; add the names clients "
                  "use with --allow-host NAME (or '*')")  # fmt: skip
    n = len(app.state.studio.models)
    print(
        f"pixtrans studio: http://{a.host}:{a.port}/  ({n} model{'s' if n != 1 else ''}, "
        f"ratings in {app.state.ratings.path})"
    )
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level)


def add_commands(sub) -> None:
    """Register ``pixtrans serve``."""
    from ..cli import add_runtime_args, at_least, device_arg, positive

    p = sub.add_parser("serve", help="the web studio: draw, translate with several models, browse, rate, download")
    p.add_argument("checkpoints", nargs="*", help="run or checkpoint folders (default: every run under ./runs)")
    p.add_argument("--data", default=None, help="dataset root whose test split gives the samples")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=at_least(0), default=8000)
    p.add_argument("--max-upload-mb", type=positive, default=20.0, help="largest accepted upload")
    p.add_argument("--max-pixels", type=at_least(1), default=4096 * 4096, help="largest accepted image (width*height)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host header is NAME (repeatable; '*': any). Default: loopback "
                   "names and --host only (guards against DNS rebinding)")  # fmt: skip
    p.add_argument("--max-mp-models", type=positive, default=16.0,
                   help="compute budget of one request: megapixels translated summed over its models")  # fmt: skip
    p.add_argument("--ratings", default=None, help="SQLite file for ratings (default: ratings.sqlite in the run)")
    p.add_argument("--queue", type=at_least(1), default=4, help="translations queued at most before 429 Busy")
    p.add_argument("--threads", type=at_least(0), default=0, help="torch CPU threads (default min(4, cores))")
    p.add_argument("--device", type=device_arg, default="auto")
    add_runtime_args(
        p, default="auto",
        runtime="where the generators run (default auto: the fastest path verified against torch fp32 on this machine, "
        "chosen once per model and cached)",
    )  # fmt: skip
    p.add_argument("--batch", type=at_least(1), default=8,
                   help="concurrent requests for one model run as one batch of at most this many (1: off)")  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(fn=cmd_serve)
