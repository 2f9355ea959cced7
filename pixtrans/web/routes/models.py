"""The page itself, ``GET /api/health`` and ``GET /api/models``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ..deps import QueueDep, StudioDep
from ..schemas import Health, ModelInfo

STATIC = Path(__file__).resolve().parents[1] / "static"  # the page, its script modules and stylesheet

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/api/health", response_model=Health)
async def health(studio: StudioDep, queue: QueueDep):
    import torch

    ds = studio.dataset
    return Health(
        status="ok",
        models=len(studio.models),
        samples=len(ds) if ds is not None else 0,
        pending=queue.pending,
        max_pending=queue.max_pending,
        threads=torch.get_num_threads(),
    )


@router.get("/api/models", response_model=list[ModelInfo])
async def models(studio: StudioDep):
    return [m.info() for m in studio.models.values()]
