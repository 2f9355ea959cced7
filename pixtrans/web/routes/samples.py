"""The test samples of ``--data``: ``GET /api/samples``, ``GET /api/samples/{i}`` and
``POST /api/samples/{i}/translate``."""

from __future__ import annotations

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from .. import uploads as U
from ..deps import LimitsDep, QueueDep, StudioDep
from ..schemas import DatasetInfo, Sample, SampleRequest, SampleTranslation, errors
from ..studio import ModelEntry, Studio, check_budget, png_data_url

router = APIRouter()


@router.get("/api/samples", response_model=DatasetInfo)
async def samples(studio: StudioDep):
    return studio.dataset_summary()


def load_sample(studio: Studio, index: int, model: str | None) -> tuple[Sample, dict, ModelEntry]:
    """Sample ``index`` as shown at ``model``'s resolution (default model if None; as stored if it cannot translate
    it), its raw maps and the model."""
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


@router.get("/api/samples/{index}", response_model=Sample, responses=errors(404))
async def sample(
    index: int, studio: StudioDep, model: str | None = Query(None, description="show at this model's resolution")
):
    s, _, _ = await run_in_threadpool(load_sample, studio, index, model)
    return s


@router.post("/api/samples/{index}/translate", response_model=SampleTranslation, responses=errors(403, 404, 413, 429))
async def sample_translate(
    index: int, studio: StudioDep, queue: QueueDep, limits: LimitsDep, req: SampleRequest | None = None
):
    req = req or SampleRequest()
    chosen = studio.pick(req.models, need="samples")
    if not chosen:
        raise U.ClientError(
            422,
            "no loaded model can translate these samples: "
            + "; ".join(studio.compatible(m) or "" for m in studio.models.values()),
        )
    styles = {m.id: studio.clean_style(m, req.styles.get(m.id)) for m in chosen}
    s, raw, _ = await run_in_threadpool(load_sample, studio, index, chosen[0].id)
    per_model = {m.id: studio.compatible(m) or raw for m in chosen}
    check_budget(chosen, per_model, "model", limits.max_mp_models)
    outs = await queue.run(studio.translate_job, chosen, per_model, styles, "model")
    return SampleTranslation(**s.model_dump(), outputs=outs, seconds=round(sum(o["seconds"] for o in outs), 4))
