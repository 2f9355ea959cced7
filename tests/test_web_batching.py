"""Dynamic batching in the studio's inference queue: concurrent calls for one model meet in one batch, each gets
its own output (equal to a one-by-one run), errors reach every job, a lone call waits for nobody."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch

from pixtrans.web.studio import BatchingBackend, InferenceQueue


class _Recorder:
    """A fake runtime backend: doubles its input, records batch sizes."""

    name, precision, is_reference, label = "fake", "fp32", False, "fake fp32"

    def __init__(self, fail: bool = False):
        self.sizes: list[int] = []
        self.fail = fail

    def __call__(self, inputs):
        x = inputs["input"]
        self.sizes.append(x.shape[0])
        time.sleep(0.02)  # a generator call takes a while
        if self.fail:
            raise ValueError("boom")
        return [x * 2, x + inputs["z"].sum(1).view(-1, 1, 1, 1)]


async def _many(queue, fn, n):
    return await asyncio.gather(*(queue.run(fn, i) for i in range(n)), return_exceptions=True)


def test_concurrent_calls_run_as_batches_and_get_their_own_outputs():
    queue = InferenceQueue(max_pending=16, workers=8)
    rec = _Recorder()
    backend = BatchingBackend(rec, queue, max_batch=4, window_s=0.05)
    assert backend.label == "fake fp32"  # the wrapped backend's attributes show through

    def job(i):
        x = torch.full((1, 2, 4, 4), float(i))
        return i, backend({"input": x, "z": torch.full((1, 3), float(i))})

    try:
        results = asyncio.run(_many(queue, job, 8))
    finally:
        queue.shutdown()
    for i, outs in results:
        assert torch.equal(outs[0], torch.full((1, 2, 4, 4), 2.0 * i))
        assert torch.equal(outs[1], torch.full((1, 2, 4, 4), 4.0 * i))
    assert sum(rec.sizes) == 8 and max(rec.sizes) > 1 and max(rec.sizes) <= 4
    assert backend.batches == rec.sizes


def test_an_error_reaches_every_job_of_the_batch_and_a_lone_call_waits_for_nobody():
    queue = InferenceQueue(max_pending=16, workers=4)
    backend = BatchingBackend(_Recorder(fail=True), queue, max_batch=4, window_s=0.05)

    def job(i):
        return backend({"input": torch.zeros(1, 1, 2, 2), "z": torch.zeros(1, 1)})

    try:
        results = asyncio.run(_many(queue, job, 4))
        assert all(isinstance(r, ValueError) for r in results)
        ok = BatchingBackend(_Recorder(), queue, max_batch=4, window_s=5.0)
        t0 = time.perf_counter()
        asyncio.run(queue.run(lambda: ok({"input": torch.ones(1, 1, 2, 2), "z": torch.ones(1, 1)})))
        assert time.perf_counter() - t0 < 2.0  # alone in the queue: no 5 s window
        direct = ok({"input": torch.ones(2, 1, 2, 2), "z": torch.ones(2, 1)})  # outside the queue: direct
        assert direct[0].shape == (2, 1, 2, 2)
    finally:
        queue.shutdown()


@pytest.mark.slow
def test_batched_studio_translations_equal_one_by_one(tmp_path):
    pytest.importorskip("fastapi")
    from pixtrans.config import config_from_dict
    from pixtrans.families import build_model
    from pixtrans.infer.translator import Translator

    cfg = config_from_dict(
        {"family": "spade", "data": {"label_nc": 5, "crop_size": 32, "load_size": 32},
         "model": {"ngf": 8, "z_dim": 8, "spade_nhidden": 8, "use_vae": True}}
    )  # fmt: skip
    torch.manual_seed(0)
    t = Translator(build_model(cfg, inference=True).eval(), cfg, {})
    t.use_runtime("torch")
    xs = [t.model.example_batch(1, 32, 32, torch.Generator().manual_seed(i)) for i in range(6)]
    alone = [t.translate_tensor(x, {"seed": i}).image for i, x in enumerate(xs)]
    queue = InferenceQueue(max_pending=16, workers=6)
    t.backend = BatchingBackend(t.backend, queue, max_batch=6, window_s=0.2)
    try:
        outs = asyncio.run(_many(queue, lambda i: t.translate_tensor(xs[i], {"seed": i}), 6))
    finally:
        queue.shutdown()
    for a, b in zip(outs, alone):
        assert float((a.image - b).abs().max()) <= 1e-5 and a.style["seed"] in range(6)
    assert max(t.backend.batches) > 1


def test_light_work_outside_the_turn_overlaps_and_the_batch_waits_for_jobs_on_their_way():
    """outside_turn gives up the gate (two jobs' 0.3 s of light work overlap); a forming batch waits for jobs still
    preparing their inputs (InferenceQueue.fresh) instead of a fixed few-ms window, so all of them meet."""
    from pixtrans.web.studio import outside_turn

    queue = InferenceQueue(max_pending=16, workers=8)
    rec = _Recorder()
    backend = BatchingBackend(rec, queue, max_batch=8, window_s=0.5)

    def job(i):
        with outside_turn():
            time.sleep(0.3 if i < 2 else 0.05 * i)  # decoding, preparing: others may hold the turn meanwhile
        return backend({"input": torch.full((1, 1, 2, 2), float(i)), "z": torch.zeros(1, 1)})

    try:
        t0 = time.perf_counter()
        results = asyncio.run(_many(queue, job, 2))
        assert time.perf_counter() - t0 < 0.55  # the two 0.3 s waits overlapped
        rec.sizes.clear()
        results = asyncio.run(_many(queue, job, 8))
    finally:
        queue.shutdown()
    assert rec.sizes == [8]  # staggered arrivals over 0.35 s, one batch
    assert [float(r[0][0, 0, 0, 0]) for r in results] == [2.0 * i for i in range(8)]
    assert queue.fresh == 0
