"""The two-score rating flow (``POST /api/rate/start`` -> ``.../translation`` -> ``.../difference``) and the stored
ratings: ``GET /api/ratings/summary`` (+ ``.csv``) and ``GET /api/ratings.csv``."""

from __future__ import annotations

import json
import random

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import uploads as U
from ..deps import QueueDep, RatingsDep, StudioDep
from ..ratings import ROW_FIELDS, SUMMARY_FIELDS, to_csv
from ..schemas import RateItem, RateStart, Reveal, Score, Stored, SummaryRow, errors
from ..studio import png_data_url

router = APIRouter()


@router.post("/api/rate/start", response_model=RateItem, responses=errors(403, 404, 413, 429))
async def rate_start(studio: StudioDep, queue: QueueDep, db: RatingsDep, req: RateStart | None = None):
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


@router.post("/api/rate/{token}/translation", response_model=Reveal, responses=errors(403, 404, 413))
async def rate_translation(token: str, score: Score, studio: StudioDep):
    r = studio.get_rating(token)
    r["translation"] = score.score
    out = r["output"]
    return Reveal(target=png_data_url(r["target"]), psnr=out["psnr"], ssim=out["ssim"], style=out["style"])


@router.post("/api/rate/{token}/difference", response_model=Stored, responses=errors(403, 404, 409, 413))
async def rate_difference(token: str, score: Score, studio: StudioDep, db: RatingsDep):
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


@router.get("/api/ratings/summary", response_model=list[SummaryRow])
async def ratings_summary(db: RatingsDep):
    return await run_in_threadpool(db.summary)


def csv_response(text: str, filename: str) -> Response:
    """``text`` as a CSV download named ``filename``."""
    return Response(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(
    "/api/ratings/summary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "mean ± std per model"}},
)
async def ratings_summary_csv(db: RatingsDep):
    text = to_csv(await run_in_threadpool(db.summary), SUMMARY_FIELDS)
    return csv_response(text, "ratings_summary.csv")


@router.get(
    "/api/ratings.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "every rating"}},
)
async def ratings_csv(db: RatingsDep):
    return csv_response(to_csv(await run_in_threadpool(db.rows), ROW_FIELDS), "ratings.csv")
