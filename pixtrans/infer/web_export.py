"""ONNX models for the browser (ONNX Runtime Web) and the static page export.

    pixtrans export runs/synth --format web --out page/ [--precision fp16|int8] [--size 256x256]

:func:`web_model` exports the generator with :func:`~pixtrans.infer.export.export_onnx` (verified against PyTorch)
and optionally stores its weights in reduced precision (*weight-only*: fp16 initialisers behind a ``Cast``, or int8
per output channel behind a ``DequantizeLinear``; the arithmetic stays fp32, so every runtime runs it), kept only when
the output stays within :data:`MIN_PSNR` dB of the fp32 graph on example label maps. :func:`export_web` writes a
self-contained folder: the drawing page (``pixtrans/web/static/page/`` + ``static/js/live.js``), the model and its
sidecar (palette, class names, input recipe, the backends the page may use), ONNX Runtime Web's WASM files (and with
``--webgpu`` its WebGPU build; installed by ``make install``) and a ``serve.py`` that sends the cross-origin-isolation
headers WASM threads need. The page runs the model through the studio's own ``live.js`` (WebGPU when the browser
gives an adapter and the build is shipped, else WASM).

This module reads the page's files by path (it does not import ``pixtrans.web``: the layer order).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

PRECISIONS = ("fp32", "fp16", "int8")
MIN_PSNR = 40.0  # dB of a reduced-precision model's output against the fp32 graph's
MIN_ELEMENTS = 1024  # smaller initialisers (biases, norms) stay fp32
WEB = Path(__file__).resolve().parents[1] / "web"
PAGE_FILES = {"page/index.html": "index.html", "page/page.css": "page.css", "js/live.js": "js/live.js",
              "page/page.js": "js/page.js"}  # fmt: skip
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# ONNX Runtime Web's WebGPU build (its binary is the asyncify one, 25.6 MB): shipped with ``webgpu=True`` only. A
# browser downloads one binary (WebGPU where it gives an adapter, else WASM), but the folder grows by that much and
# the binary alone is over the 25 MiB per-file limit of some static hosts (Cloudflare Pages).
WEBGPU_ORT_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")

SERVE_PY = '''"""Serve this folder with the headers ONNX Runtime Web needs for WASM threads (cross-origin isolation):
    python serve.py [PORT]        # then open http://127.0.0.1:PORT/
(`python -m http.server` works too, single-threaded: it sends no COOP/COEP headers.)"""
import functools
import http.server
import sys
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
handler = functools.partial(Handler, directory=str(Path(__file__).resolve().parent))
with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as srv:
    print(f"http://127.0.0.1:{port}/")
    srv.serve_forever()
'''


# ---------------------------------------------------------------------------------------------- inputs (numpy)
def _dim(d, h: int, w: int) -> int:
    return {"batch": 1, "height": h, "width": w}.get(d, 1) if isinstance(d, str) or d is None else int(d)


def build_feeds(side: dict, label: np.ndarray, inst: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The graph's inputs for a (H, W) id map, following the sidecar's recipe (what the page's ``live.js`` does):
    one-hot channels [+ don't care] [+ instance boundary] for the first input, zeros (neutral style) for others."""
    h, w = label.shape
    c = int(side["input_channels"])
    x = np.zeros((1, c, h, w), np.float32)
    nc = int(side["label_nc"])
    for k in range(nc):
        x[0, k] = label == k
    if side.get("contain_dontcare"):
        x[0, nc] = label == 255
    if side.get("instance_boundary"):
        t = (inst if inst is not None else label).astype(np.int64)
        e = np.zeros((h, w), bool)
        dx, dy = t[:, 1:] != t[:, :-1], t[1:] != t[:-1]
        e[:, 1:] |= dx
        e[:, :-1] |= dx
        e[1:] |= dy
        e[:-1] |= dy
        x[0, c - 1] = e
    feeds = {side["inputs"][0]["name"]: x}
    for spec in side["inputs"][1:]:
        shape = [_dim(d, h, w) for d in spec["shape"]]
        feeds[spec["name"]] = np.zeros(shape, np.float32)
    return feeds


def example_label(side: dict, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Blocky random label ids (8x8 blocks), like a drawn map."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, int(side["label_nc"]), ((h + 7) // 8, (w + 7) // 8))
    return np.kron(coarse, np.ones((8, 8), np.int64))[:h, :w]


def _example_feeds(side: dict, seed: int) -> dict[str, np.ndarray]:
    w, h = side["export_size"]
    if side["input_kind"] == "label":
        return build_feeds(side, example_label(side, h, w, seed))
    rng = np.random.default_rng(seed)
    feeds = {side["inputs"][0]["name"]: rng.uniform(-1, 1, (1, side["input_channels"], h, w)).astype(np.float32)}
    for spec in side["inputs"][1:]:
        feeds[spec["name"]] = np.zeros([_dim(d, h, w) for d in spec["shape"]], np.float32)
    return feeds


# ---------------------------------------------------------------------------------------------- weights
def compress_weights(src: str | Path, dst: str | Path, precision: str) -> dict:
    """Write ``src`` to ``dst`` with its large fp32 initialisers stored as fp16 (+ Cast) or per-channel int8
    (+ DequantizeLinear); returns ``{"tensors": n, "bytes": size of dst}``."""
    import onnx
    from onnx import helper, numpy_helper

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    model = onnx.load(str(src))
    g = model.graph
    if precision == "fp32":
        onnx.save(model, str(dst))
        return {"tensors": 0, "bytes": Path(dst).stat().st_size}
    keep, new_nodes, n = [], [], 0
    inputs = {i.name for i in g.input}
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < MIN_ELEMENTS or init.name in inputs:
            keep.append(init)
            continue
        n += 1
        name = init.name
        if precision == "fp16":
            keep.append(numpy_helper.from_array(arr.astype(np.float16), f"{name}__fp16"))
            new_nodes.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT))
        else:
            flat = arr.reshape(arr.shape[0], -1)
            scale = np.abs(flat).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8).reshape(arr.shape)
            keep += [
                numpy_helper.from_array(q, f"{name}__q"),
                numpy_helper.from_array(scale.astype(np.float32), f"{name}__scale"),
                numpy_helper.from_array(np.zeros(arr.shape[0], np.int8), f"{name}__zero"),
            ]
            new_nodes.append(
                helper.make_node("DequantizeLinear", [f"{name}__q", f"{name}__scale", f"{name}__zero"], [name], axis=0)
            )
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {"tensors": n, "bytes": Path(dst).stat().st_size}


def output_psnr(ref: str | Path, cand: str | Path, side: dict, n: int = 2) -> float:
    """PSNR (dB, 8-bit images) of ``cand``'s outputs against ``ref``'s on ``n`` example inputs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    a = ort.InferenceSession(str(ref), opts, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(cand), opts, providers=["CPUExecutionProvider"])
    mse = []
    for seed in range(n):
        feeds = _example_feeds(side, seed)
        ya, yb = (np.clip((s.run(None, feeds)[0] + 1) * 127.5, 0, 255).round() for s in (a, b))
        mse.append(float(np.mean((ya - yb) ** 2)))
    m = float(np.mean(mse))
    return float("inf") if m == 0 else float(10 * np.log10(255.0**2 / m))


# ---------------------------------------------------------------------------------------------- model for the web
def web_model(
    checkpoint: str | Path,
    out_dir: str | Path,
    size: tuple[int, int] | str | None = None,
    precision: str = "fp32",
    min_psnr: float = MIN_PSNR,
    log=print,
) -> dict:
    """``out_dir/model.onnx`` + ``model.json`` (the export sidecar plus ``precision``, ``psnr_vs_fp32``,
    ``model_bytes``). A reduced precision that scores under ``min_psnr`` dB falls back to fp32 (logged)."""
    from .export import export_onnx

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.fp32.onnx"
    side = export_onnx(checkpoint, fp32, size=size, dynamic=True, log=log)
    Path(side.pop("sidecar")).unlink(missing_ok=True)
    side.pop("path", None)
    final = out_dir / "model.onnx"
    fp32_bytes = fp32.stat().st_size
    info: dict[str, Any] = {"precision": "fp32", "psnr_vs_fp32": None, "requested_precision": precision}
    if precision != "fp32":
        cand = out_dir / f"model.{precision}.onnx"
        compress_weights(fp32, cand, precision)
        psnr = output_psnr(fp32, cand, side)
        if psnr >= min_psnr:
            cand.replace(final)
            info.update(precision=precision, psnr_vs_fp32=round(psnr, 2) if np.isfinite(psnr) else None)
        else:
            cand.unlink()
            log(f"export: {precision} weights give {psnr:.1f} dB against fp32 (< {min_psnr:g} dB); keeping fp32")
            info["rejected"] = {"precision": precision, "psnr_vs_fp32": round(psnr, 2)}
    if not final.exists():
        fp32.replace(final)
    fp32.unlink(missing_ok=True)
    info.update(onnx_file=final.name, model_bytes=final.stat().st_size, fp32_bytes=fp32_bytes)
    side.update(info)
    (out_dir / "model.json").write_text(json.dumps(side, indent=2))
    return side


# ---------------------------------------------------------------------------------------------- static page
def ort_dir() -> Path:
    """Where ``make install`` puts ONNX Runtime Web's files."""
    return WEB / "static" / "ort"


def export_web(
    checkpoint: str | Path,
    out: str | Path,
    size: tuple[int, int] | str | None = None,
    precision: str = "fp32",
    webgpu: bool = False,
    log=print,
) -> dict:
    """A folder that draws and translates in the browser with no Python: ``index.html``, ``js/``, ``model.onnx``,
    ``model.json``, ``ort/`` and ``serve.py``; ``webgpu`` adds ONNX Runtime Web's WebGPU build. Returns the size
    report (``model_mb``, ``runtime_mb``, ``total_mb``, ``backends``, ``webgpu_mb``: the WebGPU build's size, shipped
    or not)."""
    ort = ort_dir()
    ort_files = ORT_FILES + (WEBGPU_ORT_FILES if webgpu else ())
    missing = [f for f in ort_files if not (ort / f).is_file()]
    if missing:
        raise ConfigError(
            "--format web needs ONNX Runtime Web's files (missing: " + ", ".join(missing) + "); run `make install` "
            "(needs npm) or `python -m pixtrans.web.ort_runtime`"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    side = web_model(checkpoint, out, size=size, precision=precision, log=log)
    if side["input_kind"] != "label":
        raise ConfigError("--format web draws label maps; this model translates photos (use --format onnx)")
    side["backends"] = ["webgpu", "wasm"] if webgpu else ["wasm"]
    (out / "model.json").write_text(json.dumps(side, indent=2))
    (out / "js").mkdir(exist_ok=True)
    (out / "ort").mkdir(exist_ok=True)
    for src, dst in PAGE_FILES.items():
        shutil.copyfile(WEB / "static" / src, out / dst)
    for f in ort_files:
        shutil.copyfile(ort / f, out / "ort" / f)
    for f in set(WEBGPU_ORT_FILES) - set(ort_files):  # a folder exported before with --webgpu
        (out / "ort" / f).unlink(missing_ok=True)
    (out / "serve.py").write_text(SERVE_PY)
    mb = lambda paths: sum(p.stat().st_size for p in paths) / 2**20  # noqa: E731
    files = [p for p in out.rglob("*") if p.is_file()]
    report = {
        "path": str(out),
        "precision": side["precision"],
        "psnr_vs_fp32": side["psnr_vs_fp32"],
        "model_mb": mb([out / "model.onnx"]),
        "runtime_mb": mb([out / "ort" / f for f in ort_files]),
        "backends": side["backends"],
        "webgpu_mb": mb([ort / f for f in WEBGPU_ORT_FILES if (ort / f).is_file()]),
        "page_kb": mb([out / d for d in PAGE_FILES.values()]) * 1024,
        "total_mb": mb(files),
        "files": len(files),
        "size": side["export_size"],
    }
    return report
