"""The studio's HTTP API (``pixtrans serve``) through FastAPI's TestClient: every endpoint, styles that reproduce,
uploads of any size, bad input -> 4xx with a message (and the server still healthy), ratings in SQLite, the queue."""

from __future__ import annotations

import base64
import io
import math
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from pixtrans.checkpoints import save_checkpoint  # noqa: E402
from pixtrans.config import load_config  # noqa: E402
from pixtrans.data.datasets import dataset_info  # noqa: E402
from pixtrans.families import build_model  # noqa: E402
from pixtrans.web.app import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.ngf=8", "model.ndf=8"]
# what the page sends: a loopback Host, and X-Pixtrans on posts (multipart uploads need it; see app.Guard)
LOCAL = {"base_url": "http://127.0.0.1", "headers": {"X-Pixtrans": "1"}}


# ------------------------------------------------------------------------------------------ fixtures and helpers
def make_run(out: Path, config: str, overrides: list[str], clusters: int = 0) -> Path:
    """A checkpoint folder of a freshly initialised model (what the trainer writes, without training)."""
    cfg = load_config(ROOT / "configs" / config, overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    if clusters:
        g = torch.Generator().manual_seed(1)
        model.clusters = {c: torch.randn(clusters, model.cfg.feat_num, generator=g) for c in range(cfg.data.label_nc)}
    info = dataset_info(cfg.data)
    meta = {
        "class_names": info["class_names"] or None,
        "palette": info["palette"] or None,
        "label_nc": cfg.data.label_nc,
        "family_meta": model.meta(),
        "metrics": {"psnr": 12.5},
    }
    save_checkpoint(out, 1, cfg, model.checkpoint_state(), meta)
    return out


def make_runs(base: Path, data_root: Path) -> dict[str, Path]:
    """Three label-map models of different families on the synthetic data (pix2pix, pix2pixHD, SPADE+VAE)."""
    root = [f"data.root={data_root}"]
    return {
        "p2p": make_run(base / "p2p", "pix2pix_synth.yaml", [*root, *TINY, "model.num_downs=5"]),
        "hd": make_run(
            base / "hd",
            "pix2pixhd_synth.yaml",
            [
                *root,
                *TINY,
                "model.n_blocks_global=1",
                "model.n_downsample_global=2",
                "model.n_downsample_E=2",
                "model.nef=8",
            ],
            clusters=3,
        ),
        "spade": make_run(
            base / "spade", "spade_synth_vae.yaml", [*root, *TINY, "model.spade_nhidden=16", "model.z_dim=16"]
        ),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_root) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("web_runs")
    out = make_runs(base, synth_root)
    out["photo"] = make_run(
        base / "photo",
        "pix2pix_synth.yaml",
        [f"data.root={synth_root}", *TINY, "model.num_downs=5", "data.label_nc=0", "data.layout=paired"],
    )
    return out


@pytest.fixture(scope="module")
def app(runs, synth_root, tmp_path_factory):
    db = tmp_path_factory.mktemp("ratings") / "ratings.sqlite"
    return create_app(
        [runs["p2p"], runs["hd"], runs["spade"], runs["photo"]], synth_root, db, max_upload_mb=2, max_pixels=512 * 512
    )


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, **LOCAL) as c:
        yield c


def ids_json(ids: np.ndarray, dtype: str = "u8") -> dict:
    np_dtype = {"u8": np.uint8, "u16": "<u2", "i32": "<i4"}[dtype]
    return {
        "width": ids.shape[1],
        "height": ids.shape[0],
        "dtype": dtype,
        "data": base64.b64encode(np.ascontiguousarray(ids.astype(np_dtype)).tobytes()).decode(),
    }


def decode_ids(a: dict) -> np.ndarray:
    dt = {"u8": np.uint8, "u16": "<u2", "i32": "<i4"}[a["dtype"]]
    return np.frombuffer(base64.b64decode(a["data"]), dtype=dt).reshape(a["height"], a["width"])


def data_url_image(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, **kw).save(buf, format="PNG")
    return buf.getvalue()


def scene(h: int = 64, w: int = 64) -> np.ndarray:
    """A small label map: sky, road, a building and a car."""
    ids = np.zeros((h, w), np.uint8)
    ids[h // 2 :] = 1
    ids[h // 5 : h // 2, w // 8 : w // 3] = 3
    ids[2 * h // 3 : 5 * h // 6, w // 2 : 3 * w // 4] = 5
    return ids


def assert_healthy(client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.post("/api/translate", json={"label": ids_json(scene()), "models": ["p2p"]})
    assert r.status_code == 200 and r.json()["outputs"][0]["ok"]


def detail(r) -> str:
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body["detail"]


# ------------------------------------------------------------------------------------------ models, page, schema
def test_models_list_every_checkpoint_with_label_set_resolution_params(client, app):
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert set(models) == {"p2p", "hd", "spade", "photo"}
    assert {m["family"] for m in models.values()} == {"pix2pix", "pix2pixhd", "spade"}
    hd = models["hd"]
    assert hd["label_nc"] == 8 and hd["class_names"][:2] == ["sky", "road"] and len(hd["palette"]) == 8
    assert hd["things"] == [5, 6] and hd["no_instance"] is False and models["p2p"]["no_instance"] is True
    assert (hd["width"], hd["height"]) == (64, 64)
    for mid, m in models.items():
        assert m["params"] == app.state.studio.models[mid].translator.num_params > 0
    assert hd["style"]["kind"] == "clusters" and hd["style"]["clusters"] == {str(c): 3 for c in range(8)}
    assert models["spade"]["style"]["kind"] == "seed" and models["spade"]["style"]["reference"]
    assert models["p2p"]["style"]["kind"] == "none"
    assert models["photo"]["kind"] == "image" and models["photo"]["label_nc"] == 0
    assert models["p2p"]["label_set"] == hd["label_set"] != models["photo"]["label_set"]
    assert hd["metrics"] == {"psnr": 12.5}


def test_page_is_self_contained_and_api_has_openapi_schema(client):
    page = client.get("/")
    assert page.status_code == 200 and "pixtrans studio" in page.text
    for asset in ("/static/studio.js", "/static/studio.css"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.text) > 1000
        assert "http://" not in r.text and "https://" not in r.text, f"{asset} must not load anything from the web"
    assert "http://" not in page.text and "https://" not in page.text
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/models",
        "/api/samples/{index}",
        "/api/samples/{index}/translate",
        "/api/translate",
        "/api/upload",
        "/api/references",
        "/api/labelmap.png",
        "/api/rate/start",
        "/api/rate/{token}/translation",
        "/api/rate/{token}/difference",
        "/api/ratings/summary",
        "/api/ratings/summary.csv",
        "/api/ratings.csv",
        "/api/health",
    ):
        assert p in paths, p
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"TranslateRequest", "TranslateResponse", "ModelInfo", "Output", "IdArray"} <= set(schema)


# ------------------------------------------------------------------------------------------ samples
def test_samples_by_index_side_by_side_with_ground_truth_and_metrics(client):
    info = client.get("/api/samples").json()
    assert info["available"] and info["count"] == 4 and info["kind"] == "label" and info["has_target"]
    assert set(info["compatible"]) == {"p2p", "hd", "spade"}
    s = client.get("/api/samples/1").json()
    ids = decode_ids(s["label"])
    assert ids.shape == (64, 64) and ids.max() < 8 and s["name"] == info["names"][1]
    assert decode_ids(s["inst"]).max() >= 1000  # synth things: class*1000+k
    r = client.post("/api/samples/1/translate", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    target = data_url_image(body["target"]).astype(np.float64)
    assert [o["model"] for o in body["outputs"]] == ["p2p", "hd", "spade"]
    for o in body["outputs"]:
        img = data_url_image(o["image"])
        assert o["ok"] and img.shape == (64, 64, 3) and (o["width"], o["height"]) == (64, 64)
        mse = ((img.astype(np.float64) - target) ** 2).mean()
        assert o["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), abs=0.1)  # the PNG shown is what was scored
        assert -1 <= o["ssim"] <= 1 and o["vif"] > 0


def test_sample_with_a_model_of_another_input_kind_reports_why(client):
    r = client.post("/api/samples/0/translate", json={"models": ["photo", "p2p"]})
    assert r.status_code == 200
    photo, p2p = r.json()["outputs"]
    assert not photo["ok"] and "photos" in photo["error"] and photo["image"] is None
    assert p2p["ok"]


@pytest.mark.parametrize("index,status", [(99, 404), (-1, 404), ("abc", 422)])
def test_bad_sample_index(client, index, status):
    r = client.get(f"/api/samples/{index}")
    assert r.status_code == status
    if status == 404:
        assert "0..3" in detail(r)


# ------------------------------------------------------------------------------------------ drawing + styles
def test_drawn_label_map_with_instances_translates_with_every_model(client):
    ids = scene()
    inst = ids.astype(np.int32)
    inst[ids == 5] = 5001
    inst[50:54, 5:12], ids[50:54, 5:12] = 5002, 5
    r = client.post(
        "/api/translate", json={"label": ids_json(ids), "inst": ids_json(inst, "i32"), "models": ["p2p", "hd", "spade"]}
    )
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [o["model"] for o in outs] == ["p2p", "hd", "spade"]
    for o in outs:
        img = data_url_image(o["image"])
        assert img.shape == (64, 64, 3) and img.std() > 0 and o["seconds"] > 0


def test_styles_used_are_returned_and_reproduce_the_output(client):
    lab = ids_json(scene())
    first = client.post("/api/translate", json={"label": lab, "models": ["spade", "hd"]}).json()["outputs"]
    used = {o["model"]: o["style"] for o in first}
    assert isinstance(used["spade"]["seed"], int)
    assert set(used["hd"]["clusters"]) == {"0", "1", "3", "5"}
    again = client.post("/api/translate", json={"label": lab, "models": ["spade", "hd"], "styles": used}).json()
    for a, b in zip(first, again["outputs"]):
        assert a["image"] == b["image"] and a["style"].get("clusters") == b["style"].get("clusters")
    other = client.post(
        "/api/translate",
        json={"label": lab, "models": ["spade"], "styles": {"spade": {"seed": used["spade"]["seed"] + 1}}},
    ).json()
    assert other["outputs"][0]["image"] != first[0]["image"]
    one = client.post(
        "/api/translate", json={"label": lab, "models": ["hd"], "styles": {"hd": {"cluster": 2, "clusters": {"1": 0}}}}
    ).json()
    assert one["outputs"][0]["style"]["clusters"] == {"0": 2, "1": 0, "3": 2, "5": 2}


def test_reference_photo_styles(client, synth_root):
    photo = np.asarray(Image.open(next((synth_root / "test_img").glob("*.png"))).convert("RGB"))
    r = client.post("/api/references", files={"file": ("ref.png", png_bytes(photo), "image/png")})
    assert r.status_code == 200, r.text
    token = r.json()["reference"]
    assert token.startswith("upload:") and data_url_image(r.json()["preview"]).ndim == 3
    lab = ids_json(scene())
    for ref in (token, "sample:2"):
        out = client.post(
            "/api/translate",
            json={
                "label": lab,
                "models": ["spade", "hd"],
                "styles": {"spade": {"reference": ref}, "hd": {"reference": ref}},
            },
        )
        assert out.status_code == 200, out.text
        spade, hd = out.json()["outputs"]
        assert spade["style"] == {"reference": ref}
        assert hd["style"]["reference"] == ref and len(hd["style"]["features"]["1"]) == 3
    # the same reference gives the same picture; no file paths are accepted from clients
    a = client.post(
        "/api/translate", json={"label": lab, "models": ["spade"], "styles": {"spade": {"reference": token}}}
    )
    b = client.post(
        "/api/translate", json={"label": lab, "models": ["spade"], "styles": {"spade": {"reference": token}}}
    )
    assert a.json()["outputs"][0]["image"] == b.json()["outputs"][0]["image"]
    for bad in ("/etc/passwd", str(synth_root / "test_img" / "test_00000.png"), "upload:../../x"):
        r = client.post("/api/translate", json={"label": lab, "models": ["hd"], "styles": {"hd": {"reference": bad}}})
        assert r.status_code == 422 and "file paths are not accepted" in detail(r)
    r = client.post(
        "/api/translate",
        json={"label": lab, "models": ["spade"], "styles": {"spade": {"reference": "upload:0123456789ab"}}},
    )
    assert r.status_code == 422 and "upload the photo again" in detail(r)


@pytest.mark.parametrize(
    "model,style,needle",
    [
        ("p2p", {"seed": 1}, "no style"),
        ("spade", {"clusters": {"1": 0}}, "not supported"),
        ("spade", {"seed": -3}, "non-negative integer"),
        ("spade", {"seed": "abc"}, "non-negative integer"),
        ("hd", {"clusters": {"1": 7}}, "has 3 clusters"),
        ("hd", {"clusters": [1, 2]}, "cluster numbers"),
    ],
)
def test_bad_styles_are_422_naming_the_problem(client, model, style, needle):
    r = client.post("/api/translate", json={"label": ids_json(scene()), "models": [model], "styles": {model: style}})
    assert r.status_code == 422
    assert needle in detail(r) and model in detail(r)


def test_bad_drawn_arrays_are_rejected(client):
    ids = scene()
    good = ids_json(ids)
    cases = [
        ({"label": {**good, "data": good["data"][:-8]}}, 422, "bytes"),
        ({"label": {**good, "data": "***not base64***"}}, 422, "base64"),
        ({"label": ids_json(np.full((64, 64), 9, np.uint8))}, 422, "label id 9"),
        ({"label": ids_json(np.full((64, 64), 255, np.uint8))}, 422, "255"),
        ({"label": good, "inst": ids_json(np.zeros((32, 64), np.int32), "i32")}, 422, "differs"),
        ({"label": good, "models": ["nope"]}, 422, "unknown model 'nope'"),
        ({"label": good, "models": ["photo"]}, 422, "photo"),
        ({"label": {**good, "width": 1024, "height": 1024}}, 413, "limit"),
        ({"label": {**good, "dtype": "f32"}}, 422, "dtype"),
        ({"label": good, "fit": "stretch"}, 422, "fit"),
        ({}, 422, "label"),
    ]
    for body, status, needle in cases:
        r = client.post("/api/translate", json=body)
        assert r.status_code == status, (body.keys(), r.text)
        assert needle in detail(r), (needle, detail(r))
    assert_healthy(client)


# ------------------------------------------------------------------------------------------ uploads
def test_upload_label_map_of_any_size_resized_full_or_tiled(client):
    ids = scene(80, 96)
    files = {"file": ("map.png", png_bytes(ids), "image/png")}
    sizes = {"model": (64, 64), "full": (96, 80), "tile": (96, 80)}
    for fit, (w, h) in sizes.items():
        r = client.post("/api/upload", files=files, data={"fit": fit, "models": "p2p,hd,spade"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "label" and (body["width"], body["height"]) == (w, h)
        assert decode_ids(body["label"]).shape == (h, w)
        for o in body["outputs"]:
            assert o["ok"] and data_url_image(o["image"]).shape == (h, w, 3), (fit, o["model"])


def test_upload_colour_label_map_photo_instances_and_decode_only(client, app):
    pal = np.array(app.state.studio.models["p2p"].palette, np.uint8)
    ids = scene()
    r = client.post(
        "/api/upload",
        files={"file": ("colour.png", png_bytes(pal[ids]), "image/png")},
        data={"models": "p2p", "translate": "false"},
    )
    assert r.status_code == 200 and r.json()["outputs"] == []
    assert np.array_equal(decode_ids(r.json()["label"]), ids)  # palette colours mapped back to ids exactly
    inst = ids.astype(np.uint16) * 1000 + 1
    r = client.post(
        "/api/upload",
        data={"models": "hd", "fit": "full"},
        files={"file": ("l.png", png_bytes(ids), "image/png"), "instances": ("i.png", png_bytes(inst), "image/png")},
    )
    assert r.status_code == 200 and np.array_equal(decode_ids(r.json()["inst"]), inst)
    photo = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    r = client.post("/api/upload", files={"file": ("p.jpg", _jpeg(photo), "image/jpeg")}, data={"models": "photo,p2p"})
    assert r.status_code == 200
    out_photo, out_p2p = r.json()["outputs"]
    assert out_photo["ok"] and data_url_image(out_photo["image"]).shape == (64, 64, 3)
    assert not out_p2p["ok"] and "palette" in out_p2p["error"]
    r = client.post("/api/upload", files={"file": ("p.jpg", _jpeg(photo), "image/jpeg")}, data={"models": "p2p"})
    assert r.status_code == 422 and "label map" in detail(r)


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _huge_png(side: int = 20000) -> bytes:
    """A 1-bit side x side PNG: a few kB on disk, 400 MP decoded."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_bad_uploads_are_4xx_with_a_message_and_the_server_stays_healthy(client):
    good = png_bytes(scene())
    huge = _huge_png()
    assert len(huge) < 200_000
    cases = [
        (("notes.txt", b"hello, I am not an image\n" * 10, "text/plain"), 415, "not an image"),
        (("cut.png", good[: len(good) // 2], "image/png"), 400, "truncated"),
        (("huge.png", huge, "image/png"), 413, "decompression bomb"),
        (("ids.png", png_bytes(np.full((64, 64), 20, np.uint8)), "image/png"), 422, "label id"),
        (("empty.png", b"", "image/png"), 400, "empty"),
        (("anim.gif", _gif(), "image/gif"), 415, "GIF"),
        (("big.png", b"\x89PNG" + b"0" * (3 * 2**20), "image/png"), 413, "limit"),
    ]
    for file, status, needle in cases:
        r = client.post("/api/upload", files={"file": file}, data={"models": "p2p"})
        assert r.status_code == status, (file[0], r.status_code, r.text[:300])
        assert needle in detail(r), (file[0], detail(r))
        assert_healthy(client)
    r = client.post("/api/upload", data={"models": "p2p"})
    assert r.status_code == 422 and "file" in detail(r)
    r = client.post("/api/upload", files={"file": ("a.png", good, "image/png")}, data={"styles": "{oops"})
    assert r.status_code == 422 and "styles" in detail(r)
    r = client.post("/api/references", files={"file": ("notes.txt", b"plain text", "text/plain")})
    assert r.status_code == 415
    assert_healthy(client)


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ downloads
def test_label_map_download_png_ids_colours_and_16_bit(client, app):
    ids = scene()
    r = client.post("/api/labelmap.png", json=ids_json(ids))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    assert im.mode == "L" and np.array_equal(np.asarray(im), ids)
    r = client.post("/api/labelmap.png?colour=true&model=hd", json=ids_json(ids))
    pal = np.array(app.state.studio.models["hd"].palette, np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")), pal[ids])
    inst = ids.astype(np.int32) * 1000 + 7
    r = client.post("/api/labelmap.png", json=ids_json(inst, "i32"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))).astype(np.int64), inst)
    r = client.post("/api/labelmap.png", json=ids_json(np.full((4, 4), -1, np.int32), "i32"))
    assert r.status_code == 422 and "0..65535" in detail(r)


# ------------------------------------------------------------------------------------------ ratings
def test_rating_flow_stores_rows_and_summarises_mean_and_std(client, app):
    r = client.post("/api/rate/start", json={"model": "spade"})
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["model"] == "spade" and "target" not in item and "psnr" not in item
    assert data_url_image(item["output"]).shape == (64, 64, 3)
    tok = item["token"]
    r = client.post(f"/api/rate/{tok}/difference", json={"score": 3})
    assert r.status_code == 409 and "translation score first" in detail(r)
    r = client.post(f"/api/rate/{tok}/translation", json={"score": 11})
    assert r.status_code == 422 and "less than or equal to 10" in detail(r)
    reveal = client.post(f"/api/rate/{tok}/translation", json={"score": 7}).json()
    assert data_url_image(reveal["target"]).shape == (64, 64, 3) and reveal["psnr"] > 0
    stored = client.post(f"/api/rate/{tok}/difference", json={"score": 3}).json()
    assert client.post(f"/api/rate/{tok}/difference", json={"score": 3}).status_code == 404  # used up
    tok2 = client.post("/api/rate/start", json={"model": "spade"}).json()["token"]
    client.post(f"/api/rate/{tok2}/translation", json={"score": 4})
    client.post(f"/api/rate/{tok2}/difference", json={"score": 6})
    with sqlite3.connect(app.state.ratings.path) as db:
        rows = db.execute(
            "SELECT id, model, family, sample, translation, difference FROM ratings WHERE model = 'spade' ORDER BY id"
        ).fetchall()
    assert [r[4:] for r in rows] == [(7, 3), (4, 6)] and rows[0][0] == stored["id"] and rows[0][2] == "spade"
    assert rows[0][3] == item["index"]
    summary = {s["model"]: s for s in client.get("/api/ratings/summary").json()}["spade"]
    assert summary["n"] == 2 and summary["translation_mean"] == 5.5 and summary["difference_mean"] == 4.5
    assert summary["translation_std"] == pytest.approx(np.std([7, 4], ddof=1), abs=1e-3)
    text = client.get("/api/ratings/summary.csv")
    assert text.headers["content-type"].startswith("text/csv")
    lines = text.text.strip().splitlines()
    assert lines[0].startswith("model,checkpoint,family,n,translation_mean")
    assert any(line.startswith("spade,") and ",2,5.5," in line for line in lines[1:])
    assert len(client.get("/api/ratings.csv").text.strip().splitlines()) >= 3
    # without a model: the least-rated compatible model is picked
    auto = client.post("/api/rate/start", json={}).json()
    assert auto["model"] in {"p2p", "hd"}
    assert client.post("/api/rate/nope/translation", json={"score": 1}).status_code == 404
    r = client.post("/api/rate/start", json={"model": "photo"})
    assert r.status_code == 422 and "photos" in detail(r)


# ------------------------------------------------------------------------------------------ queue, limits, cli
def test_full_queue_answers_429_and_recovers(runs, synth_root, tmp_path):
    app = create_app([runs["p2p"]], synth_root, tmp_path / "r.sqlite", max_pending=1)
    studio = app.state.studio
    gate, entered = threading.Event(), threading.Event()
    original = studio.run_one

    def slow(*args, **kw):
        entered.set()
        assert gate.wait(30)
        return original(*args, **kw)

    studio.run_one = slow
    body = {"label": ids_json(scene())}
    with TestClient(app, **LOCAL) as c:
        results = {}
        worker = threading.Thread(target=lambda: results.setdefault("first", c.post("/api/translate", json=body)))
        worker.start()
        assert entered.wait(30)
        r = c.post("/api/translate", json=body)
        assert r.status_code == 429 and "busy" in detail(r) and r.headers["retry-after"]
        assert c.get("/api/health").json()["pending"] == 1
        gate.set()
        worker.join(30)
        assert results["first"].status_code == 200
        studio.run_one = original
        # concurrent requests within the limit all succeed (queued on the single inference thread)
        app.state.queue.max_pending = 8
        outs = []
        threads = [
            threading.Thread(target=lambda: outs.append(c.post("/api/translate", json=body).status_code))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert outs == [200] * 4
        assert c.get("/api/health").json()["pending"] == 0


def test_app_serves_again_after_its_lifespan_restarts(runs, tmp_path):
    """A server (or test client) that stops and starts the same app gets fresh worker threads: no 'cannot schedule
    new futures after shutdown' on the first translation after a restart."""
    app = create_app([runs["p2p"]], None, tmp_path / "r.sqlite")
    body = {"label": ids_json(scene())}
    for _ in range(3):
        with TestClient(app, **LOCAL) as c:
            assert c.post("/api/translate", json=body).status_code == 200
    assert app.state.queue.pending == 0


def test_unexpected_server_errors_are_json_500_and_the_queue_recovers(runs, tmp_path):
    app = create_app([runs["p2p"]], None, tmp_path / "r.sqlite")
    studio = app.state.studio
    original = studio.run_one

    def broken(*args, **kw):
        raise RuntimeError("kernel failure (simulated)")  # running out of memory is a 503: test_oom_and_outputs

    studio.run_one = broken
    with TestClient(app, raise_server_exceptions=False, **LOCAL) as c:
        r = c.post("/api/translate", json={"label": ids_json(scene())})
        assert r.status_code == 500 and "kernel failure (simulated)" in detail(r)
        studio.run_one = original
        assert c.get("/api/health").json()["pending"] == 0
        assert c.post("/api/translate", json={"label": ids_json(scene())}).status_code == 200


def test_request_body_cap_refuses_streams_over_the_limit(runs, tmp_path):
    app = create_app([runs["p2p"]], None, tmp_path / "r.sqlite", max_upload_mb=0.05)
    with TestClient(app, **LOCAL) as c:
        r = c.post("/api/translate", content=b"{" + b" " * 200_000 + b"}", headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in detail(r)

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(40):
                yield b" " * 10_000

        r = c.post("/api/translate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.get("/api/health").status_code == 200


def test_without_data_samples_and_rating_say_what_to_do(runs, tmp_path):
    app = create_app([runs["hd"]], None, tmp_path / "r.sqlite")
    with TestClient(app, **LOCAL) as c:
        assert c.get("/api/samples").json()["available"] is False
        for r in (c.get("/api/samples/0"), c.post("/api/samples/0/translate", json={}), c.post("/api/rate/start")):
            assert r.status_code in (404, 422) and "--data" in detail(r)
        # sample references need samples too
        r = c.post("/api/translate", json={"label": ids_json(scene()), "styles": {"hd": {"reference": "sample:0"}}})
        assert r.status_code == 404 and "--data" in detail(r)


def test_default_ratings_db_lives_in_the_run_folder(runs, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(runs["p2p"], run)
    app = create_app([run], None)
    assert app.state.ratings.path == run / "ratings.sqlite" and app.state.ratings.path.is_file()


def test_serve_command_is_registered_with_loopback_default():
    from pixtrans.cli import build_parser
    from pixtrans.web.app import cmd_serve

    a = build_parser().parse_args(["serve", "runs/a", "runs/b", "--data", "d", "--port", "9001"])
    assert a.fn is cmd_serve and a.checkpoints == ["runs/a", "runs/b"] and a.host == "127.0.0.1"
    assert a.port == 9001 and a.data == "d" and a.max_upload_mb > 0 and a.ratings is None
    # the studio runs each model on the fastest path verified against torch fp32 unless told otherwise
    assert (a.runtime, a.precision) == ("auto", "auto")
    assert build_parser().parse_args(["serve", "--runtime", "torch"]).runtime == "torch"


def test_serve_command_starts_on_the_fastest_verified_runtime(runs, tmp_path, monkeypatch, capsys):
    import uvicorn

    from pixtrans.cli import main

    monkeypatch.setenv("PIXTRANS_CACHE", str(tmp_path / "cache"))
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    assert main(["serve", str(runs["p2p"]), "--ratings", str(tmp_path / "r.sqlite"), "--port", "9002"]) == 0
    out = capsys.readouterr().out
    info = started["app"].state.studio.default_model().translator.runtime_info
    assert started["port"] == 9002 and info["auto"] and any(c["ok"] for c in info["candidates"])
    assert f"runtime {info['runtime']} {info['precision']} (auto)" in out


def test_serve_without_checkpoints_explains(tmp_path, monkeypatch, capsys):
    from pixtrans.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    assert "give one or more run/checkpoint folders" in capsys.readouterr().err
