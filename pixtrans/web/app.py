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

Bad input is a JSON ``{"detail": message}`` with a 4xx status; translations run one at a time on a worker thread
behind a bounded queue (429 when full).
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..data.io import ids_from_image
from ..data.labels import colorize
from ..errors import ConfigError, DataError, PixtransError
from . import uploads as U
from .ratings import ROW_FIELDS, SUMMARY_FIELDS, RatingsDB, to_csv
from .studio import Busy, InferenceQueue, ModelEntry, Studio, load_models, png_data_url

STATIC = Path(__file__).parent / "static"
Fit = Literal["model", "full", "tile"]


# ---------------------------------------------------------------------------- schemas
class IdArray(BaseModel):
    """A map of integer ids: base64 of ``width*height`` little-endian values, row by row."""

    width: int = Field(ge=1, le=65535)
    height: int = Field(ge=1, le=65535)
    dtype: Literal["u8", "u16", "i32"] = "u8"
    data: str


class StyleCaps(BaseModel):
    kind: Literal["none", "clusters", "features", "seed"]
    clusters: dict[str, int]
    seed: bool
    reference: bool


class ModelInfo(BaseModel):
    id: str
    name: str
    family: str
    checkpoint: str
    step: int
    kind: Literal["label", "image"]
    label_nc: int
    class_names: list[str]
    palette: list[list[int]]
    things: list[int]
    contain_dontcare: bool
    no_instance: bool
    input_nc: int
    width: int
    height: int
    size_multiple: int
    preprocess: str
    params: int
    metrics: dict[str, float | int | None]
    style: StyleCaps
    label_set: str


class Output(BaseModel):
    model: str
    ok: bool
    image: str | None = Field(None, description="PNG data URL")
    width: int = 0
    height: int = 0
    style: dict[str, Any] | None = Field(None, description="the style used; send it back to reproduce the output")
    seconds: float = 0.0
    psnr: float | None = None
    ssim: float | None = None
    vif: float | None = Field(None, description="pixel-domain VIF (NaN-free; None below 41 px)")
    error: str | None = None


class TranslateRequest(BaseModel):
    label: IdArray
    inst: IdArray | None = Field(None, description="instance ids (class*1000+k for things), same size as label")
    models: list[str] = Field(default_factory=list, description="model ids; empty = every model")
    styles: dict[str, dict[str, Any]] = Field(default_factory=dict, description="model id -> style")
    fit: Fit = Field("full", description="model: resize to the model's size; full: as given; tile: tiled")


class TranslateResponse(BaseModel):
    kind: Literal["label", "image"]
    width: int
    height: int
    input: str | None = Field(None, description="the input as a PNG data URL (label maps in palette colours)")
    label: IdArray | None = None
    inst: IdArray | None = None
    outputs: list[Output]
    seconds: float = 0.0


class DatasetInfo(BaseModel):
    available: bool
    count: int
    kind: str | None
    label_nc: int
    has_target: bool
    names: list[str]
    compatible: list[str] = Field(default_factory=list)


class Sample(BaseModel):
    index: int
    name: str
    count: int
    model: str = Field(description="the model whose resolution the sample is shown at")
    kind: Literal["label", "image"]
    width: int
    height: int
    input: str
    target: str | None
    label: IdArray | None = None
    inst: IdArray | None = None


class SampleRequest(BaseModel):
    models: list[str] = Field(default_factory=list)
    styles: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SampleTranslation(Sample):
    outputs: list[Output]
    seconds: float


class Reference(BaseModel):
    reference: str = Field(description="use as style {'reference': this}")
    width: int
    height: int
    preview: str


class RateStart(BaseModel):
    model: str | None = Field(None, description="model id; default: the one with the fewest ratings")


class RateItem(BaseModel):
    token: str
    model: str
    model_name: str
    index: int
    name: str
    input: str
    output: str
    width: int
    height: int


class Score(BaseModel):
    score: int = Field(ge=0, le=10)


class Reveal(BaseModel):
    target: str | None
    psnr: float | None
    ssim: float | None
    style: dict[str, Any] | None


class SummaryRow(BaseModel):
    model: str
    checkpoint: str
    family: str
    n: int
    translation_mean: float
    translation_std: float
    difference_mean: float
    difference_std: float


class Stored(BaseModel):
    id: int
    summary: list[SummaryRow]


class Health(BaseModel):
    status: Literal["ok"]
    models: int
    samples: int
    pending: int
    max_pending: int
    threads: int


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


# ---------------------------------------------------------------------------- the app
def default_ratings_path(checkpoint: str | Path) -> Path:
    """``ratings.sqlite`` in the run folder of ``checkpoint`` (or beside a bare checkpoint folder)."""
    from ..checkpoints import resolve_checkpoint

    ck = resolve_checkpoint(checkpoint)
    run = ck.parent.parent if ck.parent.name == "checkpoints" else ck
    return run / "ratings.sqlite"


def create_app(
    checkpoints: list[str | Path],
    data: str | Path | None = None,
    ratings_db: str | Path | None = None,
    max_upload_mb: float = 20.0,
    max_pixels: int = 4096 * 4096,
    max_pending: int = 4,
    threads: int | None = None,
    device: str = "auto",
) -> FastAPI:
    """The studio app for ``checkpoints`` (run or checkpoint folders), test samples from ``data``, ratings in
    ``ratings_db`` (default: ``ratings.sqlite`` in the first checkpoint's run folder)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    studio = Studio(load_models(checkpoints, device=device), data, max_pixels=max_pixels)
    db_path = Path(ratings_db or default_ratings_path(checkpoints[0]))
    try:
        db = RatingsDB(db_path)
    except (OSError, sqlite3.Error) as err:
        raise ConfigError(f"ratings database {db_path}: cannot open it ({err}); pass --ratings FILE") from None
    queue = InferenceQueue(max_pending)
    max_bytes = int(max_upload_mb * 2**20)

    @asynccontextmanager
    async def lifespan(app):
        yield
        queue.shutdown()

    app = FastAPI(
        title="pixtrans studio",
        version=_version(),
        lifespan=lifespan,
        redoc_url=None,
        description="Translate label maps and photos with pix2pix, pix2pixHD, SPADE and MSG U-Net models.",
    )
    app.state.studio, app.state.queue, app.state.ratings = studio, queue, db
    app.add_middleware(BodyLimit, limit=int(max_bytes * 1.4) + 2**16)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- errors: always {"detail": message} with a 4xx for the client's mistakes
    @app.exception_handler(U.ClientError)
    async def _client_error(request: Request, err: U.ClientError):
        return JSONResponse({"detail": err.message}, status_code=err.status)

    @app.exception_handler(Busy)
    async def _busy(request: Request, err: Busy):
        return JSONResponse({"detail": str(err)}, status_code=429, headers={"Retry-After": "2"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in err.errors()
        ]
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": text or "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(PixtransError)
    async def _pixtrans_error(request: Request, err: PixtransError):
        status = 422 if isinstance(err, DataError) else 500
        return JSONResponse({"detail": str(err)}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):  # still JSON; the traceback goes to the server log
        return JSONResponse({"detail": f"internal error: {type(err).__name__}: {err}"}, status_code=500)

    # -- page
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/health", response_model=Health)
    async def health():
        ds = studio.dataset
        return Health(
            status="ok",
            models=len(studio.models),
            samples=len(ds) if ds is not None else 0,
            pending=queue.pending,
            max_pending=queue.max_pending,
            threads=torch.get_num_threads(),
        )

    @app.get("/api/models", response_model=list[ModelInfo])
    async def models():
        return [m.info() for m in studio.models.values()]

    # -- samples
    @app.get("/api/samples", response_model=DatasetInfo)
    async def samples():
        return studio.dataset_summary()

    def _sample(index: int, model: str | None) -> tuple[Sample, dict, ModelEntry]:
        raw, name = studio.raw_sample(index)
        m = studio.models.get(model) if model else None
        if model and m is None:
            raise U.ClientError(422, f"unknown model {model!r}; loaded: {', '.join(studio.models)}")
        m = m or studio.default_model()
        why = studio.compatible(m)
        shown = studio.fit_maps(m, raw, "model") if why is None else raw
        h, w = next(iter(shown.values())).shape[:2]
        sample = Sample(
            index=index,
            name=name,
            count=len(studio.dataset),
            model=m.id,
            kind="label" if "label" in shown else "image",
            width=w,
            height=h,
            input=studio.display_input(m if why is None else None, shown),
            target=png_data_url(shown["target"]) if "target" in shown else None,
            label=U.encode_ids(shown["label"]) if "label" in shown else None,
            inst=U.encode_ids(shown["inst"]) if "inst" in shown else None,
        )
        return sample, raw, m

    @app.get("/api/samples/{index}", response_model=Sample)
    async def sample(index: int, model: str | None = Query(None, description="show at this model's resolution")):
        s, _, _ = await run_in_threadpool(_sample, index, model)
        return s

    @app.post("/api/samples/{index}/translate", response_model=SampleTranslation)
    async def sample_translate(index: int, req: SampleRequest | None = None):
        req = req or SampleRequest()
        chosen = studio.pick(req.models, need="samples")
        if not chosen:
            raise U.ClientError(
                422,
                "no loaded model can translate these samples: "
                + "; ".join(studio.compatible(m) or "" for m in studio.models.values()),
            )
        styles = {m.id: studio.clean_style(m, req.styles.get(m.id)) for m in chosen}
        s, raw, _ = await run_in_threadpool(_sample, index, chosen[0].id)
        per_model = {m.id: studio.compatible(m) or raw for m in chosen}
        outs = await queue.run(studio.translate_job, chosen, per_model, styles, "model")
        return SampleTranslation(**s.model_dump(), outputs=outs, seconds=round(sum(o["seconds"] for o in outs), 4))

    # -- drawn label maps
    @app.post("/api/translate", response_model=TranslateResponse)
    async def translate(req: TranslateRequest):
        chosen = studio.pick(req.models)
        label = U.decode_ids(req.label.data, req.label.width, req.label.height, req.label.dtype, "label", max_pixels)
        inst = None
        if req.inst is not None:
            inst = U.decode_ids(req.inst.data, req.inst.width, req.inst.height, req.inst.dtype, "inst", max_pixels)
            if inst.shape != label.shape:
                raise U.ClientError(
                    422,
                    f"inst: {inst.shape[1]}x{inst.shape[0]} differs from the label map "
                    f"{label.shape[1]}x{label.shape[0]}",
                )
        for m in chosen:
            if m.kind != "label":
                raise U.ClientError(422, f"{m.id} translates photos, not label maps; upload a photo instead")
            U.check_ids(label, f"label map for {m.id}", m.data.label_nc, m.data.contain_dontcare)
        styles = {m.id: studio.clean_style(m, req.styles.get(m.id)) for m in chosen}
        maps = {"label": label, **({"inst": inst} if inst is not None else {})}
        outs = await queue.run(studio.translate_job, chosen, {m.id: maps for m in chosen}, styles, req.fit)
        return TranslateResponse(
            kind="label",
            width=label.shape[1],
            height=label.shape[0],
            outputs=outs,
            input=None,
            seconds=round(sum(o["seconds"] for o in outs), 4),
        )

    # -- uploaded files
    async def _read(file: UploadFile) -> tuple[Image.Image, str]:
        name = _safe_name(file.filename)
        data = await file.read(max_bytes + 1)
        return await run_in_threadpool(U.open_image, data, name, max_bytes, max_pixels), name

    @app.post("/api/upload", response_model=TranslateResponse)
    async def upload(
        file: Annotated[UploadFile, File(description="a label map (PNG of ids or palette colours) or a photo")],
        instances: Annotated[UploadFile | None, File(description="optional instance map (16-bit PNG)")] = None,
        models: Annotated[str, Form(description="comma-separated model ids; empty = every model")] = "",
        styles: Annotated[str, Form(description="JSON object: model id -> style")] = "{}",
        fit: Annotated[Fit, Form(description="model: resize to each model's size; full: as is; tile: tiled")] = "model",
        translate: Annotated[bool, Form(description="false: only decode and return the label map")] = True,
    ):
        chosen = studio.pick([s for s in models.split(",") if s.strip()])
        try:
            style_json = json.loads(styles or "{}")
        except ValueError:
            raise U.ClientError(422, "styles: not valid JSON") from None
        if not isinstance(style_json, dict):
            raise U.ClientError(422, "styles: expected a JSON object of model id -> style")
        clean = {m.id: studio.clean_style(m, style_json.get(m.id)) for m in chosen}
        im, name = await _read(file)
        inst = None
        if instances is not None and instances.filename:
            iim, iname = await _read(instances)
            try:
                inst = ids_from_image(iim, iname, "instance map")
            except DataError as err:
                raise U.ClientError(422, str(err)) from None
            if inst.shape != (im.size[1], im.size[0]):
                raise U.ClientError(
                    422,
                    f"{iname}: instance map {inst.shape[1]}x{inst.shape[0]} differs from "
                    f"{name} ({im.size[0]}x{im.size[1]})",
                )
        per_model, first = await run_in_threadpool(_decode_for_models, im, name, inst, chosen)
        good = [m for m in chosen if isinstance(per_model[m.id], dict)]
        if not good:
            raise U.ClientError(422, " | ".join(per_model[m.id] for m in chosen))
        fm = next(m for m in chosen if m.id == first)
        shown = studio.fit_maps(fm, per_model[first], "model") if fit == "model" else per_model[first]
        h, w = next(iter(shown.values())).shape[:2]
        small = w * h <= 1024 * 1024
        resp = TranslateResponse(
            kind=fm.kind,
            width=w,
            height=h,
            outputs=[],
            input=studio.display_input(fm, shown) if small else None,
            label=U.encode_ids(shown["label"]) if "label" in shown and (small or not translate) else None,
            inst=U.encode_ids(shown["inst"]) if "inst" in shown and (small or not translate) else None,
        )
        if translate:
            outs = await queue.run(studio.translate_job, chosen, per_model, clean, fit)
            resp.outputs = [Output(**o) for o in outs]
            resp.seconds = round(sum(o["seconds"] for o in outs), 4)
        return resp

    def _decode_for_models(im, name, inst, chosen) -> tuple[dict[str, dict | str], str]:
        per_model: dict[str, dict | str] = {}
        cache: dict[str, dict | str] = {}
        for m in chosen:
            key = m.label_set() + ("" if m.kind == "image" else repr(m.palette) + str(m.data.contain_dontcare))
            if key not in cache:
                try:
                    if m.kind == "label":
                        ids = U.label_from_image(im, name, m.data.label_nc, m.data.contain_dontcare, m.palette)
                        cache[key] = {"label": ids, **({"inst": inst} if inst is not None else {})}
                    else:
                        cache[key] = {"source": U.photo_from_image(im, name)}
                except U.ClientError as err:
                    cache[key] = f"{m.id}: {err.message}"
            per_model[m.id] = cache[key]
        first = next((m.id for m in chosen if isinstance(per_model[m.id], dict)), chosen[0].id)
        return per_model, first

    @app.post("/api/references", response_model=Reference)
    async def reference(file: Annotated[UploadFile, File(description="a photo whose style to copy")]):
        im, name = await _read(file)
        photo = await run_in_threadpool(U.photo_from_image, im, name)
        token = studio.add_reference(photo)
        thumb = im.convert("RGB")
        thumb.thumbnail((256, 256))
        return Reference(
            reference=token, width=photo.shape[1], height=photo.shape[0], preview=png_data_url(np.asarray(thumb))
        )

    @app.post(
        "/api/labelmap.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the map as a PNG"}},
    )
    async def labelmap_png(
        ids: IdArray,
        colour: bool = Query(False, description="palette colours instead of ids"),
        model: str | None = Query(None, description="whose palette to use for colour"),
    ):
        arr = U.decode_ids(ids.data, ids.width, ids.height, ids.dtype, "ids", max_pixels)
        if colour:
            m = studio.models.get(model) if model else studio.default_model()
            if m is None:
                raise U.ClientError(422, f"unknown model {model!r}")
            im = Image.fromarray(colorize(arr, m.palette))
        elif int(arr.min()) >= 0 and int(arr.max()) < 256:
            im = Image.fromarray(arr.astype(np.uint8), mode="L")
        elif int(arr.min()) >= 0 and int(arr.max()) < 65536:
            im = Image.fromarray(arr.astype(np.uint16))
        else:
            raise U.ClientError(422, "ids: values outside 0..65535 cannot be stored in a PNG")
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png")

    # -- ratings
    @app.post("/api/rate/start", response_model=RateItem)
    async def rate_start(req: RateStart | None = None):
        req = req or RateStart()
        ds = studio.require_dataset()
        if not ds.has_target:
            raise U.ClientError(404, "rating needs ground-truth photos, and this dataset's test split has none")
        if req.model:
            m = studio.pick([req.model])[0]
            why = studio.compatible(m)
            if why:
                raise U.ClientError(422, why)
        else:
            good = [studio.models[i] for i in studio.compatible_ids()]
            if not good:
                raise U.ClientError(422, "no loaded model can translate these samples")
            counts = db.counts()
            least = min(counts.get(g.ratings_key, 0) for g in good)
            m = random.choice([g for g in good if counts.get(g.ratings_key, 0) == least])
        index = random.randrange(len(ds))
        raw, name = await run_in_threadpool(studio.raw_sample, index)
        if "target" not in raw:
            raise U.ClientError(404, f"sample {index} has no ground-truth photo")

        def job():
            maps = studio.fit_maps(m, raw, "model")
            return studio.run_one(m, maps, {}, "full"), maps

        out, maps = await queue.run(job)
        token = studio.new_rating(m, index, name, out, maps["target"])
        return RateItem(
            token=token,
            model=m.id,
            model_name=m.name,
            index=index,
            name=name,
            input=studio.display_input(m, maps),
            output=out["image"],
            width=out["width"],
            height=out["height"],
        )

    @app.post("/api/rate/{token}/translation", response_model=Reveal)
    async def rate_translation(token: str, score: Score):
        r = studio.get_rating(token)
        r["translation"] = score.score
        out = r["output"]
        return Reveal(target=png_data_url(r["target"]), psnr=out["psnr"], ssim=out["ssim"], style=out["style"])

    @app.post("/api/rate/{token}/difference", response_model=Stored)
    async def rate_difference(token: str, score: Score):
        r = studio.get_rating(token)
        if r["translation"] is None:
            raise U.ClientError(409, "give the translation score first (POST .../translation), then the difference")
        m = studio.models[r["model"]]
        out = r["output"]
        row_id = await run_in_threadpool(
            db.add,
            model=m.name,
            checkpoint=m.ratings_key,
            family=m.family,
            step=int(m.translator.meta.get("step", 0)),
            sample=r["index"],
            sample_name=r["name"],
            translation=r["translation"],
            difference=score.score,
            psnr=out["psnr"],
            ssim=out["ssim"],
            style=json.dumps(out["style"]),
        )
        studio.drop_rating(token)
        return Stored(id=row_id, summary=await run_in_threadpool(db.summary))

    @app.get("/api/ratings/summary", response_model=list[SummaryRow])
    async def ratings_summary():
        return await run_in_threadpool(db.summary)

    @app.get(
        "/api/ratings/summary.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "mean ± std per model"}},
    )
    async def ratings_summary_csv():
        text = to_csv(await run_in_threadpool(db.summary), SUMMARY_FIELDS)
        return _csv(text, "ratings_summary.csv")

    @app.get(
        "/api/ratings.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "every rating"}},
    )
    async def ratings_csv():
        return _csv(to_csv(await run_in_threadpool(db.rows), ROW_FIELDS), "ratings.csv")

    return app


def _csv(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _safe_name(name: str | None) -> str:
    """The client's file name for messages only (never used as a path)."""
    base = Path(str(name or "upload")).name
    return "".join(c for c in base if c.isprintable())[:80] or "upload"


def _version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------- command line
def _find_runs() -> list[str]:
    runs = Path("runs")
    return sorted(str(p) for p in runs.iterdir() if (p / "latest").is_file()) if runs.is_dir() else []


def cmd_serve(a) -> None:
    import os

    import uvicorn

    checkpoints = list(a.checkpoints) or _find_runs()
    if not checkpoints:
        raise ConfigError(
            "pixtrans serve: give one or more run/checkpoint folders (none found under ./runs); "
            "train one first, e.g. `pixtrans demo`"
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
    )
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {a.host}: anyone who can reach this address can use the studio")
    n = len(app.state.studio.models)
    print(
        f"pixtrans studio: http://{a.host}:{a.port}/  ({n} model{'s' if n != 1 else ''}, "
        f"ratings in {app.state.ratings.path})"
    )
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level)


def add_commands(sub) -> None:
    """Register ``pixtrans serve``."""
    p = sub.add_parser("serve", help="the web studio: draw, translate with several models, browse, rate, download")
    p.add_argument("checkpoints", nargs="*", help="run or checkpoint folders (default: every run under ./runs)")
    p.add_argument("--data", default=None, help="dataset root whose test split gives the samples")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest accepted image (width*height)")
    p.add_argument("--ratings", default=None, help="SQLite file for ratings (default: ratings.sqlite in the run)")
    p.add_argument("--queue", type=int, default=4, help="translations queued at most before 429 Busy")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default min(4, cores))")
    p.add_argument("--device", default="auto")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(fn=cmd_serve)
