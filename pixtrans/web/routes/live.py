"""In-page inference: ``GET /api/models/{id}/web`` exports the model for ONNX Runtime Web on first use and answers
its sidecar (or why it runs on the server only); ``GET /api/models/{id}/model.onnx`` is the graph itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from .. import uploads as U
from ..deps import StudioDep
from ..schemas import WebModel

router = APIRouter()


@router.get("/api/models/{mid}/web", response_model=WebModel)
async def web_model(mid: str, request: Request, studio: StudioDep):
    (m,) = studio.pick([mid])
    models = request.app.state.web_models
    res = await run_in_threadpool(models.get, m)
    return WebModel(
        model=m.id,
        available=res["available"],
        why=res.get("why", ""),
        runtime=models.runtime(),
        backends=models.backends(),
        url=f"api/models/{m.id}/model.onnx" if res["available"] else None,
        sidecar=res.get("sidecar"),
    )


@router.get("/api/models/{mid}/model.onnx", include_in_schema=False)
async def web_model_file(mid: str, request: Request, studio: StudioDep):
    (m,) = studio.pick([mid])
    path = request.app.state.web_models.onnx_path(m)
    if path is None or not path.is_file():
        raise U.ClientError(404, f"{m.id}: not exported for the browser yet; GET api/models/{m.id}/web first")
    return FileResponse(path, media_type="application/octet-stream")
