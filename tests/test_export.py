"""`pixtrans export --format onnx`: the graph matches PyTorch under onnxruntime; the sidecar describes its input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixtrans.checkpoints import save_checkpoint
from pixtrans.config import config_from_dict
from pixtrans.errors import ConfigError
from pixtrans.families import build_model
from pixtrans.infer.export import ExportFailed, export_onnx
from pixtrans.infer.translator import load

ort = pytest.importorskip("onnxruntime")

PIX2PIX = {"family": "pix2pix", "data": {"label_nc": 0, "crop_size": 64}, "model": {"ngf": 8, "num_downs": 6}}
HD = {
    "family": "pix2pixhd",
    "data": {"label_nc": 5, "no_instance": False, "crop_size": 64},
    "model": {"ngf": 8, "n_downsample_global": 2, "n_blocks_global": 1},
}
SPADE = {"family": "spade", "data": {"label_nc": 5, "crop_size": 64}, "model": {"ngf": 4, "spade_nhidden": 8}}
MSG = {
    "family": "msg_unet",
    "data": {"label_nc": 5, "crop_size": 64},
    "model": {"ngf": 8, "n_scales": 3, "n_extra_down": 1},
}
NAMES = ["sky", "road", "car", "tree", "house"]
PALETTE = [[0, 0, 255], [128, 64, 128], [0, 0, 142], [0, 255, 0], [70, 70, 70]]


def checkpoint(tmp_path, raw: dict, seed: int = 0):
    torch.manual_seed(seed)
    cfg = config_from_dict(raw)
    model = build_model(cfg)
    if cfg.family == "spade":  # spectral norm's u, v start random: a few power iterations, as training does
        x = model.prepare({"input": torch.randint(0, cfg.data.label_nc, (1, 1, 64, 64))})["input"]
        with torch.no_grad():
            for _ in range(3):
                model.G(x)
    model.eval()
    meta = {"class_names": NAMES, "palette": PALETTE} if cfg.data.label_nc else {}
    return save_checkpoint(tmp_path / "run", 7, cfg, model.checkpoint_state(), meta)


def run_onnx(path, *inputs: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs)})[0]


def assert_matches_torch(t, path, *inputs: torch.Tensor) -> np.ndarray:
    """The graph at PATH gives translator T's PyTorch output on INPUTS (to 1e-4); returns the graph's output."""
    with torch.no_grad():
        ref = t.model.inference_module()(*inputs).numpy()
    out = run_onnx(path, *inputs)
    assert np.abs(out - ref).max() < 1e-4
    return out


def label_batch(t, batch: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, t.data.label_nc, (batch, 1, h // 4, w // 4), generator=g)
    ids = torch.nn.functional.interpolate(ids.float(), size=(h, w)).long()
    return t.model.prepare({"input": ids, "inst": ids})["input"]


def test_pix2pix_round_trip_and_sidecar(tmp_path):
    ck = checkpoint(tmp_path, PIX2PIX)
    res = export_onnx(ck, tmp_path / "m.onnx", log=lambda *_: None)
    assert res["exporter"] == "torchscript" and res["dynamic"]
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert side == {k: v for k, v in res.items() if k not in ("path", "sidecar")}
    assert side["family"] == "pix2pix" and side["input_kind"] == "image" and side["step"] == 7
    assert side["inputs"] == [{"name": "input", "shape": ["batch", 3, "height", "width"], "dtype": "float32"}]
    assert side["size_multiple"] == 64 and side["input_channels"] == 3 and side["input_nc"] == 3
    assert side["verification"]["max_abs_diff"] <= side["verification"]["tolerance"]
    assert len(side["verification"]["sizes_checked"]) == 2
    # a size and batch the export never saw
    t = load(ck, device="cpu")
    out = assert_matches_torch(t, tmp_path / "m.onnx", torch.rand(2, 3, 128, 192) * 2 - 1)
    assert out.shape == (2, 3, 128, 192)


def test_pix2pixhd_label_sidecar(tmp_path):
    ck = checkpoint(tmp_path, HD)
    export_onnx(ck, tmp_path / "hd.onnx", log=lambda *_: None)
    side = json.loads((tmp_path / "hd.onnx.json").read_text())
    assert (side["input_kind"], side["label_nc"], side["instance_boundary"], side["contain_dontcare"]) == (
        "label", 5, True, False)  # fmt: skip
    assert side["input_channels"] == 6 and side["class_names"] == NAMES and side["palette"] == PALETTE
    assert "channel 5: instance boundary" in side["input_recipe"]
    t = load(ck, device="cpu")
    assert_matches_torch(t, tmp_path / "hd.onnx", label_batch(t, 1, 48, 80))


def test_pix2pixhd_features_get_a_second_input(tmp_path):
    raw = {**HD, "model": {**HD["model"], "use_features": True, "feat_num": 3, "nef": 4, "n_downsample_E": 2}}
    ck = checkpoint(tmp_path, raw)
    export_onnx(ck, tmp_path / "f.onnx", log=lambda *_: None)
    side = json.loads((tmp_path / "f.onnx.json").read_text())
    assert [i["name"] for i in side["inputs"]] == ["input", "feat"] and side["inputs"][1]["shape"][1] == 3
    assert "feature_clusters" in side
    t = load(ck, device="cpu")
    assert_matches_torch(t, tmp_path / "f.onnx", label_batch(t, 1, 32, 32), torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("vae", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_spade(tmp_path, vae):
    raw = {**SPADE, "model": {**SPADE["model"], "use_vae": vae}}
    ck = checkpoint(tmp_path, raw)
    res = export_onnx(ck, tmp_path / "s.onnx", log=lambda *_: None)
    # the VAE's z -> map layer ties the graph to the training crop: exported at a fixed size, and said so
    assert res["dynamic"] is (not vae)
    assert res["export_size"] == [64, 64]
    assert ("style" in res) is vae
    t = load(ck, device="cpu")
    assert_matches_torch(t, tmp_path / "s.onnx", label_batch(t, 1, 64, 64))


def test_msg_unet(tmp_path):
    ck = checkpoint(tmp_path, MSG)
    res = export_onnx(ck, tmp_path / "g.onnx", size="32x64", log=lambda *_: None)
    assert res["dynamic"] and res["export_size"] == [32, 64] and res["size_multiple"] == 8
    t = load(ck, device="cpu")
    assert_matches_torch(t, tmp_path / "g.onnx", label_batch(t, 1, 40, 24))


def test_static_export_has_fixed_shapes(tmp_path):
    ck = checkpoint(tmp_path, PIX2PIX)
    res = export_onnx(ck, tmp_path / "s.onnx", size="128x64", dynamic=False, opset=16, log=lambda *_: None)
    assert (res["dynamic"], res["opset"]) == (False, 16)
    assert res["inputs"][0]["shape"] == [1, 3, 64, 128]
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 3, 64, 128]


def test_bad_options(tmp_path):
    ck = checkpoint(tmp_path, PIX2PIX)
    with pytest.raises(ConfigError, match="multiples of 64"):
        export_onnx(ck, tmp_path / "m.onnx", size="100x64")
    with pytest.raises(ConfigError, match=r"\.onnx"):
        export_onnx(ck, tmp_path / "m.bin")
    with pytest.raises(ConfigError, match="exporter"):
        export_onnx(ck, tmp_path / "m.onnx", exporter="tflite")


def test_mismatch_beyond_tolerance_is_an_error(tmp_path):
    ck = checkpoint(tmp_path, PIX2PIX)
    with pytest.raises(ExportFailed, match="differs from PyTorch"):
        export_onnx(ck, tmp_path / "m.onnx", dynamic=False, exporter="torchscript", atol=-1.0, log=lambda *_: None)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.json").exists()


@pytest.mark.slow
def test_dynamo_exporter(tmp_path):
    ck = checkpoint(tmp_path, PIX2PIX)
    res = export_onnx(ck, tmp_path / "d.onnx", exporter="dynamo", log=lambda *_: None)
    assert res["exporter"] == "dynamo" and res["dynamic"] and res["opset"] >= 18
    assert not (tmp_path / "d.onnx.data").exists()  # weights inside the one file
    x = torch.rand(3, 3, 192, 64) * 2 - 1
    assert_matches_torch(load(ck, device="cpu"), tmp_path / "d.onnx", x)


@pytest.mark.slow
def test_cli_export(tmp_path, capsys):
    from pixtrans.cli import main

    ck = checkpoint(tmp_path, HD)
    assert main(["export", str(ck), "--format", "onnx", "--out", str(tmp_path / "c.onnx"), "--size", "32x32"]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out and (tmp_path / "c.onnx.json").is_file()
    assert main(["export", str(ck), "--out", str(tmp_path / "c.onnx"), "--size", "30x30"]) == 2
    assert "multiples of 4" in capsys.readouterr().err
