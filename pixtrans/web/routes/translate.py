"""Translating the user's own input: ``POST /api/translate`` (a drawn label map), ``POST /api/upload`` (a label map or
photo file of any size), ``POST /api/references`` (a style photo) and ``POST /api/labelmap.png`` (ids -> PNG)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from ...data.io import ids_from_image
from ...data.labels import colorize
from ...errors import DataError
from .. import uploads as U
from ..deps import Limits, LimitsDep, QueueDep, StudioDep
from ..schemas import Fit, IdArray, Output, Reference, TranslateRequest, TranslateResponse, errors
from ..studio import ModelEntry, check_budget, png_data_url

router = APIRouter()


# -- drawn label maps
@router.post("/api/translate", response_model=TranslateResponse, responses=errors(403, 413, 429))
async def translate(req: TranslateRequest, studio: StudioDep, queue: QueueDep, limits: LimitsDep):
    chosen = studio.pick(req.models)
    max_pixels = limits.max_pixels
    label = U.decode_ids(req.label.data, req.label.width, req.label.height, req.label.dtype, "label", max_pixels)
    inst = None
    if req.inst is not None:
        inst = U.decode_ids(req.inst.data, req.inst.width, req.inst.height, req.inst.dtype, "inst", max_pixels)
        if inst.shape != label.shape:
            raise U.ClientError(
                422,
                f"inst: {inst.shape[1]}x{inst.shape[0]} differs from the label map {label.shape[1]}x{label.shape[0]}",
            )
    for m in chosen:
        if m.kind != "label":
            raise U.ClientError(422, f"{m.id} translates photos, not label maps; upload a photo instead")
        U.check_ids(label, f"label map for {m.id}", m.data.label_nc, m.data.contain_dontcare)
    styles = {m.id: studio.clean_style(m, req.styles.get(m.id)) for m in chosen}
    maps = {"label": label, **({"inst": inst} if inst is not None else {})}
    per_model = {m.id: maps for m in chosen}
    check_budget(chosen, per_model, req.fit, limits.max_mp_models)
    outs = await queue.run(studio.translate_job, chosen, per_model, styles, req.fit)
    return TranslateResponse(
        kind="label",
        width=label.shape[1],
        height=label.shape[0],
        outputs=outs,
        input=None,
        seconds=round(sum(o["seconds"] for o in outs), 4),
    )


# -- uploaded files
def safe_name(name: str | None) -> str:
    """The client's file name for messages only (never used as a path)."""
    base = Path(str(name or "upload")).name
    return "".join(c for c in base if c.isprintable())[:80] or "upload"


async def read_image(file: UploadFile, limits: Limits) -> tuple[Image.Image, str]:
    """The uploaded image (within the byte and pixel limits) and its printable name."""
    name = safe_name(file.filename)
    data = await file.read(limits.max_bytes + 1)
    return await run_in_threadpool(U.open_image, data, name, limits.max_bytes, limits.max_pixels), name


def decode_for_models(im, name, inst, chosen: list[ModelEntry]) -> tuple[dict[str, dict | str], str]:
    """The input maps of ``im`` for each chosen model (decoded once per label set), or why it cannot take them; and
    the first model that can."""
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
                cache[key] = err.message
        per_model[m.id] = cache[key] if isinstance(cache[key], dict) else f"{m.id}: {cache[key]}"
    first = next((m.id for m in chosen if isinstance(per_model[m.id], dict)), chosen[0].id)
    return per_model, first


@router.post("/api/upload", response_model=TranslateResponse, responses=errors(403, 413, 415, 429))
async def upload(
    studio: StudioDep,
    queue: QueueDep,
    limits: LimitsDep,
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
    im, name = await read_image(file, limits)
    inst = None
    if instances is not None and instances.filename:
        iim, iname = await read_image(instances, limits)
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
    per_model, first = await run_in_threadpool(decode_for_models, im, name, inst, chosen)
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
        check_budget(chosen, per_model, fit, limits.max_mp_models)
        outs = await queue.run(studio.translate_job, chosen, per_model, clean, fit)
        resp.outputs = [Output(**o) for o in outs]
        resp.seconds = round(sum(o["seconds"] for o in outs), 4)
    return resp


@router.post("/api/references", response_model=Reference, responses=errors(403, 413, 415))
async def reference(
    studio: StudioDep,
    limits: LimitsDep,
    file: Annotated[UploadFile, File(description="a photo whose style to copy")],
):
    im, name = await read_image(file, limits)
    photo = await run_in_threadpool(U.photo_from_image, im, name)
    token = studio.add_reference(photo)
    thumb = im.convert("RGB")
    thumb.thumbnail((256, 256))
    return Reference(
        reference=token, width=photo.shape[1], height=photo.shape[0], preview=png_data_url(np.asarray(thumb))
    )


# -- label map download
@router.post(
    "/api/labelmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the map as a PNG"}, **errors(403, 413)},
)
async def labelmap_png(
    ids: IdArray,
    studio: StudioDep,
    limits: LimitsDep,
    colour: bool = Query(False, description="palette colours instead of ids"),
    model: str | None = Query(None, description="whose palette to use for colour"),
):
    arr = U.decode_ids(ids.data, ids.width, ids.height, ids.dtype, "ids", limits.max_pixels)
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
