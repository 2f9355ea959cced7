"""Runtimes (pixtrans.infer.runtimes): every family and style mode on torch bf16, ONNX Runtime and OpenVINO matches the
torch fp32 reference; verdicts and graphs are cached; auto says what it chose; unsupported combinations are clear
errors. A runtime's tests skip when its package is not installed."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from pixtrans.config import config_from_dict
from pixtrans.errors import ConfigError
from pixtrans.families import build_model
from pixtrans.infer import runtimes as R
from pixtrans.infer.translator import Translator

LABELS = {"label_nc": 6, "no_instance": False, "crop_size": 32, "load_size": 32}
TINY = {
    "pix2pix": {"family": "pix2pix", "data": {"crop_size": 32}, "model": {"ngf": 8, "num_downs": 5}},
    "pix2pixhd": {"family": "pix2pixhd", "data": LABELS,
                  "model": {"ngf": 8, "nef": 8, "n_blocks_global": 1, "n_downsample_global": 2,
                            "use_features": True, "n_downsample_E": 2, "feat_num": 3}},
    "spade": {"family": "spade", "data": {**LABELS, "crop_size": 64, "load_size": 64},  # the VAE's z map: crop-sized
              "model": {"ngf": 8, "z_dim": 8, "spade_nhidden": 8, "use_vae": True}},
    "spade_plain": {"family": "spade", "data": LABELS, "model": {"ngf": 8, "spade_nhidden": 8}},
    "msg_unet": {"family": "msg_unet", "data": LABELS, "model": {"ngf": 8, "n_scales": 3, "n_extra_down": 1}},
}  # fmt: skip
PHOTO = torch.rand(1, 3, 32, 32) * 2 - 1
# style modes per family (None = the model's default)
STYLES = {
    "pix2pix": [None],
    "pix2pixhd": [{"cluster": 1}, {"clusters": {"2": 0}, "seed": 4}, {"features": {"1": [0.5, -0.2, 0.1]}},
                  {"reference": {"image": PHOTO, "label": None}}],
    "spade": [{"seed": 3}, {"reference": PHOTO}],
    "spade_plain": [None],
    "msg_unet": [None],
}  # fmt: skip
PAIRS = [("onnxruntime", "fp32"), ("openvino", "fp32"), ("torch", "bf16")]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXTRANS_CACHE", str(tmp_path / "cache"))


def _need(runtime: str) -> None:
    if runtime != "torch":
        pytest.importorskip(runtime)


def _translator(name: str) -> Translator:
    cfg = config_from_dict(TINY[name])
    torch.manual_seed(0)
    model = build_model(cfg, inference=True).eval()
    if name == "pix2pixhd":
        model.set_clusters({c: torch.randn(2, 3) for c in range(6)})
    return Translator(model, cfg, {})


def _style(name: str, style, x: dict):
    if style and isinstance(style.get("reference"), dict):  # pix2pixHD: a photo with the input's own layout
        photo = torch.rand(1, 3, *x["label"].shape[-2:], generator=torch.Generator().manual_seed(5)) * 2 - 1
        return {"reference": {"image": photo, "label": x["label"][0, 0]}}
    return style


QUICK = {("pix2pixhd", "onnxruntime"), ("msg_unet", "onnxruntime"), ("pix2pixhd", "openvino")}


@pytest.mark.parametrize(
    "name,runtime,precision",
    [pytest.param(n, r, p, marks=() if (n, r) in QUICK else pytest.mark.slow) for n in TINY for r, p in PAIRS],
)
def test_every_family_and_style_matches_torch(name, runtime, precision):
    _need(runtime)
    t = _translator(name)
    if precision == "fp32":
        info = t.use_runtime(runtime, precision)
        assert info["runtime"] == runtime and info["precision"] == precision and info["verdict"]["ok"]
    else:  # tiny random weights saturate, so bf16 may fail verification (40 dB); the style paths are what is tested
        t.backend = R.make_backend(t.model, runtime, precision)
    h, w = t.model.padded_size(32, 32)  # a size the translator does not pad, so translate runs on the same input
    x = t.model.example_batch(2, h, w, torch.Generator().manual_seed(1))
    for style in STYLES[name]:
        style = _style(name, style, x)
        ref = t.model.translate(x, style)
        got = t.translate_tensor(x, style)
        assert got.style == ref.style
        assert len(got.scales) == len(ref.scales)  # MSG U-Net: every scale
        for a, b in zip(got.scales, ref.scales):
            assert a.shape == b.shape
            if precision == "fp32":
                assert float((a - b).abs().max()) <= R.FP32_ATOL
            else:
                assert R._psnr(a, b) >= 20


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_other_sizes_and_the_cache_is_reused(runtime, monkeypatch):
    _need(runtime)
    t = _translator("pix2pixhd")
    t.use_runtime(runtime)
    folder = R.model_folder(t.model)
    verdict = json.loads((folder / f"verdict-{runtime}-fp32-cpu.json").read_text())
    assert verdict["ok"] and verdict["max_abs"] <= R.FP32_ATOL and verdict["size"] == "32x32"
    for h, w in [(40, 24), (20, 52)]:  # padded to the size multiple: a second shape, the same (dynamic) graph
        x = t.model.example_batch(1, h, w, torch.Generator().manual_seed(2))
        ref, got = t.model.translate(x, {"cluster": 0}), t.translate_tensor(x, {"cluster": 0})
        assert got.image.shape == (1, 3, h, w) and float((got.image - ref.image).abs().max()) <= R.FP32_ATOL
    assert [p.name for p in folder.glob("graph-*.onnx")] == ["graph-dynamic.onnx"]
    x = t.model.example_batch(3, 24, 40, torch.Generator().manual_seed(4))  # a batch: the studio's batching
    ref, got = t.model.translate(x, {"cluster": 0}), t.translate_tensor(x, {"cluster": 0})
    assert float((got.image - ref.image).abs().max()) <= R.FP32_ATOL
    assert list(t.backend.compiled) == ["dynamic"]  # every size and batch on one compiled graph, never recompiled

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(R, "export_graph", no_export)
    again = Translator(t.model, t.cfg, {})
    assert again.use_runtime(runtime)["verdict"] == verdict  # cached verdict, cached graph
    x = t.model.example_batch(1, 32, 32, torch.Generator().manual_seed(3))
    again.translate_tensor(x, {"cluster": 1})


def test_auto_reports_its_choice_and_caches_it(monkeypatch):
    t = _translator("msg_unet")
    logs = []
    info = t.use_runtime("auto", "fp32", log=logs.append)
    assert info["auto"] and t.runtime_info is info and info["precision"] == "fp32"
    timed = [c for c in info["candidates"] if c["ok"]]
    assert {(c["runtime"], c["precision"]) for c in timed} >= {("torch", "fp32")}
    best = min(timed, key=lambda c: c["latency_s"])
    assert (info["runtime"], info["precision"]) == (best["runtime"], best["precision"])
    assert len(logs) == 1 and f"chose {info['runtime']} fp32" in logs[0]
    monkeypatch.setattr(R, "time_backends", lambda *a, **k: pytest.fail("measured again"))
    assert Translator(t.model, t.cfg, {}).use_runtime("auto", "fp32")["runtime"] == info["runtime"]


def test_a_failing_runtime_is_refused_by_name_and_skipped_by_auto(monkeypatch):
    pytest.importorskip("onnxruntime")
    t = _translator("pix2pix")
    real = R.OnnxRuntimeBackend.__call__
    monkeypatch.setattr(R.OnnxRuntimeBackend, "__call__", lambda self, i: [o + 0.01 for o in real(self, i)])
    with pytest.raises(R.RuntimeUnsupported, match=r"onnxruntime fp32 does not match torch fp32.*use --runtime torch"):
        t.use_runtime("onnxruntime")
    info = t.use_runtime("auto", "fp32")
    assert info["runtime"] != "onnxruntime"
    assert any(c["runtime"] == "onnxruntime" and not c["ok"] for c in info["candidates"])


def test_unsupported_combinations_are_clear_errors(monkeypatch):
    t = _translator("pix2pix")
    with pytest.raises(R.RuntimeUnsupported, match="fp16 runs on CUDA only"):
        t.use_runtime("torch", "fp16")
    with pytest.raises(R.RuntimeUnsupported, match="runtime 'tensorrt'"):
        t.use_runtime("tensorrt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(R.RuntimeUnsupported, match=r'pip install "pixtrans\[fast\]"'):
        t.use_runtime("onnxruntime")
    monkeypatch.delitem(sys.modules, "onnxruntime")
    pytest.importorskip("onnxruntime")
    with pytest.raises(R.RuntimeUnsupported, match="onnxruntime runs fp32"):
        t.use_runtime("onnxruntime", "bf16")


def test_paper_test_protocol_runs_only_on_torch():
    pytest.importorskip("onnxruntime")
    t = _translator("pix2pix")
    t.use_runtime("onnxruntime")
    t.model.cfg.eval_mode = False
    x = t.model.example_batch(1, 32, 32, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="runs only on --runtime torch"):
        t.translate_tensor(x)
    t.use_runtime("torch")
    assert t.translate_tensor(x).image.shape == (1, 3, 32, 32)  # the family's own translate


def test_batched_generator_inputs_equal_one_by_one():
    """Items of a batch are independent on the generator module (what the studio's dynamic batching relies on)."""
    t = _translator("spade")
    t.use_runtime("torch")
    xs = [t.model.example_batch(1, 32, 32, torch.Generator().manual_seed(i)) for i in range(3)]
    parts = [t.model.generator_inputs(x, {"seed": i}) for i, x in enumerate(xs)]
    batched = t.backend({k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]})
    for i, (inputs, _) in enumerate(parts):
        one = t.backend(inputs)
        assert float((batched[-1][i : i + 1] - one[-1]).abs().max()) <= 1e-5


@pytest.mark.slow
def test_cli_translate_says_which_runtime_ran(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import numpy as np
    from PIL import Image

    from pixtrans.checkpoints import save_checkpoint
    from pixtrans.cli import main

    cfg = config_from_dict(TINY["msg_unet"])
    ck = save_checkpoint(tmp_path / "run", 1, cfg, build_model(cfg).checkpoint_state(), {"class_names": []})
    Image.fromarray(np.kron(np.arange(16).reshape(4, 4) % 6, np.ones((8, 8))).astype(np.uint8)).save(tmp_path / "a.png")
    args = ["translate", str(ck), str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--all-scales"]
    assert main([*args, "--runtime", "onnxruntime"]) == 0
    err = capsys.readouterr().err
    assert "runtime: onnxruntime fp32 (verified vs torch fp32: max abs" in err
    assert len(list((tmp_path / "o").glob("a_scale*.png"))) == 3
    assert main([*args[:4], str(tmp_path / "tiled"), "--runtime", "onnxruntime", "--tile", "16"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "tiled translation runs on torch fp32" in notes[0]  # one line, once
    assert main([*args, "--runtime", "onnxruntime", "--precision", "bf16"]) == 2
    assert "onnxruntime runs fp32" in capsys.readouterr().err  # one line, no traceback


@pytest.mark.slow
def test_cli_bench_runtime_all_json(capsys):
    from pixtrans.cli import main

    assert main(["bench", "unet_256", "--set", "model.ngf=8", "--runtime", "all", "--runs", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    got = {(r["runtime"], r["precision"]): r for r in rows}
    assert got[("torch", "fp32")]["speedup"] == 1.0 and got[("torch", "fp32")]["max_abs"] == 0.0
    for r in rows:
        assert "error" in r or (r["latency_s"] > 0 and "speedup" in r and "psnr" in r and "peak_mem_mb" in r)


def test_tiles_run_on_torch_and_say_so_once():
    """Exact tiling cannot split a compiled graph: tiles run on torch fp32 (same output as the reference's tiles),
    and the translator says so once, naming the runtime it keeps for untiled inputs."""
    pytest.importorskip("onnxruntime")
    from pixtrans.infer.tiling import translate_tiled

    t = _translator("msg_unet")
    x = t.model.example_batch(1, 64, 64, torch.Generator().manual_seed(0))
    want = translate_tiled(t.model, x, None, 32).image
    t.use_runtime("onnxruntime")
    with pytest.warns(UserWarning, match="tiled translation runs on torch fp32: exact tiling"):
        got = t.translate_tensor(x, tile=32).image
    assert torch.equal(got, want)
    notes: list[str] = []
    t2 = _translator("msg_unet")
    t2.use_runtime("onnxruntime")
    t2.notify = notes.append
    t2.translate_tensor(x)  # untiled: the chosen runtime, nothing to say
    assert notes == []
    for _ in range(2):
        t2.translate_tensor(x, tile=32)
    assert len(notes) == 1 and "onnxruntime fp32 runs the untiled inputs" in notes[0]
    t2.use_runtime("torch")
    assert t2.tiling_note() == ""


def test_a_model_only_torch_runs_refuses_every_other_path():
    """runtime_unsupported (pix2pix's paper test protocol) is one reason everywhere: a named runtime or reduced
    precision is refused with it, auto runs torch fp32 and says why, bench rows name it."""
    from pixtrans.infer.bench import bench_runtimes

    t = _translator("pix2pix")
    t.model.use_paper_test()
    for runtime, precision in (("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32")):
        with pytest.raises(R.RuntimeUnsupported, match=f"^{runtime} {precision}: the paper's test protocol"):
            t.use_runtime(runtime, precision)
    info = t.use_runtime("auto")
    assert (info["runtime"], info["precision"]) == ("torch", "fp32") and "paper's test protocol" in info["note"]
    pairs = [("torch", "fp32"), ("onnxruntime", "fp32")]
    rows = bench_runtimes(t.model, 32, 32, pairs, runs=1, warmup=0)
    assert rows[0]["latency_s"] > 0 and "paper's test protocol" in rows[1]["error"]


def test_auto_leaves_out_emulated_bf16_on_the_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(R, "cpu_has_bf16", lambda: False)
    assert ("torch", "bf16") not in R.candidates(cpu, "auto") and ("torch", "fp32") in R.candidates(cpu, "auto")
    assert R.candidates(cpu, "bf16") == [("openvino", "bf16")]  # OpenVINO says itself whether the CPU has bf16
    monkeypatch.setattr(R, "cpu_has_bf16", lambda: True)
    assert ("torch", "bf16") in R.candidates(cpu, "auto")
    assert ("onnxruntime", "bf16") not in R.candidates(cpu, "auto")
