"""The studio's guards (issue 13): Host allow-list (DNS rebinding), no cross-site form posts, no absolute paths in
ratings, a per-request compute budget, documented error bodies; degenerate input sizes and per-model failures in
multi-model requests."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from test_web_api import LOCAL, detail, ids_json, make_runs, png_bytes, scene  # noqa: E402

from pixtrans.web.app import create_app, host_name  # noqa: E402
from pixtrans.web.ratings import RatingsDB, checkpoint_name  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_root):
    return make_runs(tmp_path_factory.mktemp("safety_runs"), synth_root)


@pytest.fixture(scope="module")
def app(runs, synth_root, tmp_path_factory):
    db = tmp_path_factory.mktemp("ratings") / "ratings.sqlite"
    return create_app([runs["p2p"], runs["hd"], runs["spade"]], synth_root, db, allow_hosts=["studio.lan"])


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, **LOCAL) as c:
        yield c


# ------------------------------------------------------------------------------------------ Host allow-list
@pytest.mark.parametrize(
    "header, name",
    [("127.0.0.1:8000", "127.0.0.1"), ("[::1]:80", "::1"), ("LocalHost", "localhost"), ("::1", "::1"), ("", "")],
)
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:1", "[::1]:8000", "studio.lan:8000"])
def test_loopback_and_allowed_hosts_are_answered(client, host):
    assert client.get("/api/health", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.", ""])
def test_other_hosts_are_refused_with_the_flag_to_allow_them(client, host):
    r = client.get("/api/models", headers={"host": host})
    assert r.status_code == 400 and "--allow-host" in detail(r)
    r = client.post("/api/translate", json={"label": ids_json(scene())}, headers={"host": host})
    assert r.status_code == 400


def test_allow_any_host(runs, tmp_path):
    app = create_app([runs["p2p"]], None, tmp_path / "r.sqlite", allow_hosts=["*"])
    with TestClient(app, base_url="http://anything.example") as c:
        assert c.get("/api/health").status_code == 200


def test_serve_has_allow_host_and_compute_budget_flags():
    import argparse

    from pixtrans.web.app import add_commands

    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers())
    a = p.parse_args(["serve", "--allow-host", "a.lan", "--allow-host", "b.lan", "--max-mp-models", "2"])
    assert a.allow_host == ["a.lan", "b.lan"] and a.max_mp_models == 2.0


# ------------------------------------------------------------------------------------------ cross-site posts
def test_form_posts_without_the_custom_header_are_refused(app):
    # no X-Pixtrans header: what a cross-site <form> sends (no `with`: the module's app keeps running)
    c = TestClient(app, base_url="http://127.0.0.1")
    files = {"file": ("l.png", png_bytes(scene()), "image/png")}
    r = c.post("/api/upload", files=files, data={"models": "p2p"})
    assert r.status_code == 403 and "X-Pixtrans" in detail(r)
    body = '{"label": {"width": 1, "height": 1, "data": "AA=="}}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):
        r = c.post("/api/translate", content=body, headers={"content-type": ctype})
        assert r.status_code == 403
    assert c.post("/api/rate/start").status_code == 403  # no body, no header
    assert c.post("/api/upload", files=files, data={"models": "p2p"}, headers={"X-Pixtrans": "1"}).is_success
    assert c.post("/api/translate", json={"label": ids_json(scene()), "models": ["p2p"]}).is_success


def test_page_sends_the_custom_header():
    from pixtrans.web.routes.models import STATIC

    assert '"X-Pixtrans"' in (STATIC / "js" / "api.js").read_text()


# ------------------------------------------------------------------------------------------ ratings: no paths
def test_ratings_name_checkpoints_without_absolute_paths(client, app, runs, tmp_path):
    assert checkpoint_name("/srv/x/runs/synth/checkpoints/step_000100") == "synth/step_000100"
    r = client.post("/api/rate/start", json={"model": "p2p"})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert client.post(f"/api/rate/{token}/translation", json={"score": 6}).status_code == 200
    assert client.post(f"/api/rate/{token}/difference", json={"score": 3}).status_code == 200
    # the file keys ratings by resolved path (pixtrans compare matches on it); the API and CSVs show names
    legacy = str(runs["hd"].resolve() / "checkpoints" / "step_000001")
    with sqlite3.connect(app.state.ratings.path) as db:
        db.execute(
            "INSERT INTO ratings (created, model, checkpoint, family, step, sample, sample_name, translation, "
            "difference) VALUES ('2026-01-01', 'hd', ?, 'pix2pixhd', 1, 0, 'x', 5, 5)",
            (legacy,),
        )
    root = str(runs["p2p"].resolve().parent)
    for url in ("/api/ratings.csv", "/api/ratings/summary.csv", "/api/ratings/summary"):
        text = client.get(url).text
        assert root not in text and "step_000001" in text, url
    assert app.state.ratings.counts()[legacy] == 1
    shown = {r["checkpoint"] for r in RatingsDB(app.state.ratings.path).rows()}
    assert f"{runs['hd'].name}/step_000001" in shown and not any(s.startswith("/") for s in shown)


# ------------------------------------------------------------------------------------------ compute budget
def test_compute_budget_refuses_requests_over_the_limit(runs, tmp_path):
    app = create_app([runs["p2p"], runs["hd"]], None, tmp_path / "r.sqlite", max_mp_models=0.01)  # 10,000 px
    with TestClient(app, **LOCAL) as c:
        big = ids_json(scene(96, 96))  # 9,216 px: one model fits, two do not
        assert c.post("/api/translate", json={"label": big, "models": ["p2p"]}).status_code == 200
        r = c.post("/api/translate", json={"label": big, "models": ["p2p", "hd"]})
        assert r.status_code == 413 and "--max-mp-models" in detail(r)
        r = c.post(
            "/api/upload",
            files={"file": ("l.png", png_bytes(scene(96, 96)), "image/png")},
            data={"models": "p2p,hd", "fit": "full"},
        )
        assert r.status_code == 413
        # fit 'model' counts each model's own resolution (64x64 here)
        r = c.post("/api/translate", json={"label": ids_json(scene(300, 300)), "models": ["p2p"], "fit": "model"})
        assert r.status_code == 200
        assert c.get("/api/health").json()["pending"] == 0


# ------------------------------------------------------------------------------------------ error schema
def test_every_error_status_is_documented_with_the_error_body(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status in ("400", "422", "500") + (("403", "413") if method == "post" else ()):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (path, method, status)
    assert "429" in spec["paths"]["/api/translate"]["post"]["responses"]
    assert "415" in spec["paths"]["/api/upload"]["post"]["responses"]
    assert "409" in spec["paths"]["/api/rate/{token}/difference"]["post"]["responses"]


def test_validation_422_body_matches_the_documented_schema(client):
    from pixtrans.web.schemas import ErrorBody

    r = client.post("/api/translate", json={"label": {"width": 0}})
    assert r.status_code == 422
    body = ErrorBody.model_validate(r.json())
    assert body.errors and "label" in body.detail
    r = client.post("/api/translate", json={"label": ids_json(scene()), "models": ["nope"]})
    assert r.status_code == 422 and ErrorBody.model_validate(r.json()).errors is None


# ------------------------------------------------------------------------------------------ degenerate sizes
@pytest.mark.parametrize("h, w", [(1, 1), (8, 8), (16, 16), (8, 64), (200, 3)])
def test_tiny_and_thin_drawings_translate_with_every_model(client, h, w):
    ids = np.zeros((h, w), np.uint8)
    ids[h // 2 :] = 1
    for fit in ("full", "tile"):
        r = client.post("/api/translate", json={"label": ids_json(ids), "fit": fit})
        assert r.status_code == 200, r.text
        outs = r.json()["outputs"]
        assert [o["model"] for o in outs] == ["p2p", "hd", "spade"]
        assert all(o["ok"] and (o["width"], o["height"]) == (w, h) for o in outs), outs


def test_tiny_upload_translates_full(client):
    r = client.post(
        "/api/upload",
        files={"file": ("t.png", png_bytes(np.ones((3, 40), np.uint8)), "image/png")},
        data={"fit": "full"},
    )
    assert r.status_code == 200 and all(o["ok"] for o in r.json()["outputs"])


# ------------------------------------------------------------------------------------------ per-model failures
def test_one_models_failure_keeps_the_others_results(app, client, monkeypatch):
    studio = app.state.studio
    original = studio.run_one

    def flaky(m, *args, **kw):
        if m.id == "hd":
            raise RuntimeError("simulated crash")
        return original(m, *args, **kw)

    monkeypatch.setattr(studio, "run_one", flaky)
    r = client.post("/api/translate", json={"label": ids_json(scene())})
    assert r.status_code == 200
    outs = {o["model"]: o for o in r.json()["outputs"]}
    assert outs["p2p"]["ok"] and outs["spade"]["ok"]
    assert not outs["hd"]["ok"] and outs["hd"]["error"].startswith("hd: ") and "simulated crash" in outs["hd"]["error"]
    quiet = TestClient(app, raise_server_exceptions=False, **LOCAL)
    r = quiet.post("/api/translate", json={"label": ids_json(scene()), "models": ["hd"]})
    assert r.status_code == 500 and "simulated crash" in detail(r)  # nothing succeeded: the error itself


def test_upload_errors_name_each_model(client):
    photo = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(photo).save(buf, format="PNG")
    r = client.post("/api/upload", files={"file": ("p.png", buf.getvalue(), "image/png")}, data={"models": "p2p,spade"})
    assert r.status_code == 422
    parts = detail(r).split(" | ")
    assert [p.split(":", 1)[0] for p in parts] == ["p2p", "spade"]
