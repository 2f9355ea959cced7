"""The browser export without a browser: the numpy input recipe equals TranslationModel.prepare (one-hot, don't care,
instance boundary), reduced-precision weights (fp16 / int8) keep >= 40 dB against fp32 and shrink the file, the
`--format web` folder and its size report, and the runtime installer's integrity check."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import torch

from pixtrans.infer.web_export import build_feeds, compress_weights, output_psnr, web_model
from pixtrans.web import ort_runtime

pytest.importorskip("onnxruntime")
from test_web_api import LOCAL, TINY, make_run  # noqa: E402

HD = ["model.n_blocks_global=1", "model.n_downsample_global=2", "model.n_downsample_E=2", "model.nef=8"]


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("web_export")
    over = ["data.root=unused", *TINY, "model.num_downs=5", "model.init_type=xavier", "model.init_gain=1.0"]
    return make_run(base / "p2p", "pix2pix_synth.yaml", over)


@pytest.fixture(scope="module")
def p2p_web(p2p_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("p2p_web")
    return out, web_model(p2p_run, out, log=lambda *a: None)


def test_numpy_recipe_equals_prepare_with_dontcare_and_boundaries(tmp_path):
    from test_web_api import ROOT

    from pixtrans.config import load_config
    from pixtrans.families import build_model

    over = ["data.root=unused", *TINY, *HD, "data.contain_dontcare=true", "data.no_instance=false"]
    cfg = load_config(ROOT / "configs" / "pix2pixhd_synth.yaml", over)
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    label = rng.integers(0, 8, (24, 32))
    label[:3] = 255
    inst = label * 1000 + rng.integers(0, 2, (24, 32))
    x = model.prepare({"input": torch.from_numpy(label)[None, None], "inst": torch.from_numpy(inst)[None, None]})
    side = {"input_channels": model.in_channels, "label_nc": 8, "contain_dontcare": True, "instance_boundary": True,
            "inputs": [{"name": "input", "shape": ["batch", model.in_channels, "height", "width"]},
                       {"name": "feat", "shape": ["batch", 3, "height", "width"]}]}  # fmt: skip
    feeds = build_feeds(side, label, inst)
    assert np.array_equal(feeds["input"], x["input"].float().numpy())
    assert feeds["feat"].shape == (1, 3, 24, 32) and not feeds["feat"].any()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_weights_keep_40_db(p2p_web, precision, tmp_path):
    folder, side = p2p_web
    cand = tmp_path / f"{precision}.onnx"
    res = compress_weights(folder / "model.onnx", cand, precision)
    assert res["tensors"] > 0 and res["bytes"] < 0.6 * (folder / "model.onnx").stat().st_size
    assert output_psnr(folder / "model.onnx", cand, side) >= 40.0


@pytest.mark.slow
def test_web_model_sidecar(p2p_web):
    folder, side = p2p_web
    assert json.loads((folder / "model.json").read_text()) == side
    assert side["precision"] == "fp32" and side["input_kind"] == "label" and len(side["palette"]) == 8
    assert side["model_bytes"] == (folder / "model.onnx").stat().st_size
    assert not (folder / "model.fp32.onnx").exists()


@pytest.mark.slow
def test_cli_export_web_folder_and_size_report(p2p_run, tmp_path, capsys):
    from pixtrans.cli import main

    if ort_runtime.installed() is None:
        with pytest.raises(SystemExit):
            main(["export", str(p2p_run), "--format", "web", "--out", str(tmp_path / "page")])
        assert "make install" in capsys.readouterr().err
        return
    main(["export", str(p2p_run), "--format", "web", "--out", str(tmp_path / "page"), "--precision", "int8"])
    text = capsys.readouterr().out
    assert "int8 weights" in text and "total" in text and "serve.py" in text
    out = tmp_path / "page"
    for f in ("index.html", "js/live.js", "js/page.js", "page.css", "model.onnx", "model.json", "serve.py",
              *(f"ort/{n}" for n in ort_runtime.WASM_FILES)):  # fmt: skip
        assert (out / f).is_file(), f
    side = json.loads((out / "model.json").read_text())
    assert side["precision"] == "int8" and side["psnr_vs_fp32"] >= 40.0


# ------------------------------------------------------------------------------------------ runtime installer
def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_runtime_integrity_and_extract(tmp_path):
    version, integrity = ort_runtime.pinned()
    assert integrity.startswith("sha512-") and version.count(".") == 2
    data = _tarball({n: n.encode() for n in ort_runtime.FILES})
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    ort_runtime.check_integrity(data, good)
    with pytest.raises(ort_runtime.RuntimeInstallError, match="integrity mismatch"):
        ort_runtime.check_integrity(data + b"x", good)
    (tmp_path / "p.tgz").write_bytes(data)
    ort_runtime.extract(tmp_path / "p.tgz", tmp_path / "ort", version)
    assert ort_runtime.installed(tmp_path / "ort") == version
    assert (tmp_path / "ort" / "ort.wasm.min.mjs").read_bytes() == b"ort.wasm.min.mjs"
    assert ort_runtime.backends(tmp_path / "ort") == ["webgpu", "wasm"]
    (tmp_path / "ort" / ort_runtime.WEBGPU_FILES[-1]).unlink()  # an install from before the WebGPU build: WASM only
    assert ort_runtime.backends(tmp_path / "ort") == ["wasm"] and ort_runtime.installed(tmp_path / "ort") == version
    (tmp_path / "ort" / ort_runtime.WASM_FILES[-1]).unlink()
    assert ort_runtime.backends(tmp_path / "ort") == [] and ort_runtime.installed(tmp_path / "ort") is None


def test_runtime_install_without_npm_is_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(ort_runtime.shutil, "which", lambda name: None)
    said = []
    assert ort_runtime.install(folder=tmp_path / "ort", log=said.append) is False
    assert "npm not found" in said[0] and "server" in said[0]


def test_studio_says_why_a_model_runs_on_the_server_only(p2p_run, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from pixtrans.web.app import create_app

    monkeypatch.setattr(ort_runtime, "installed", lambda folder=None: None)
    with TestClient(create_app([p2p_run], None, tmp_path / "r.sqlite"), **LOCAL) as c:
        info = c.get("/api/models/p2p/web").json()
    assert info["available"] is False and info["runtime"] is None and "make install" in info["why"]
