"""OpenAPI-driven fuzzing of the studio (schemathesis, in-process over ASGI): valid and invalid requests generated from
``/openapi.json`` for every operation, bounded to a few hundred in all; no response may be a 5xx, and every response
must match its documented status, content type and schema (errors included: ``ErrorBody``)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_web_api import make_run, make_runs  # noqa: E402

from pixtrans.web.app import create_app  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 8  # per operation and generation mode: ~16 operations x 2 modes x 8 = ~250 requests


@pytest.fixture(scope="module")
def app(tmp_path_factory, synth_root):
    base = tmp_path_factory.mktemp("fuzz_runs")
    runs = make_runs(base, synth_root)
    photo = make_run(
        base / "photo",
        "pix2pix_synth.yaml",
        [f"data.root={synth_root}", "model.ngf=8", "model.ndf=8", "model.num_downs=5", "data.label_nc=0"],
    )
    return create_app(
        [runs["p2p"], runs["hd"], runs["spade"], photo],
        synth_root,
        base / "ratings.sqlite",
        max_upload_mb=0.5,
        max_pixels=256 * 256,
        max_mp_models=0.5,
        allow_hosts=["testserver"],  # the Host schemathesis's ASGI client sends
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_errors_and_responses_match_the_schema(app, mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    gen_mode = schemathesis.GenerationMode(mode)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 14
    sent: list[int] = []
    for op in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=gen_mode))
        def check(case):
            sent.append(case.call_and_validate(headers={"X-Pixtrans": "1"}, checks=CHECKS, timeout=120).status_code)

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
            assert mode == "negative", op.label
    assert len(sent) >= 60 and not [s for s in sent if s >= 500], sorted(set(sent))
