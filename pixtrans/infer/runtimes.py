"""Runtimes: the generator network of a model on torch, ONNX Runtime or OpenVINO, each verified against torch fp32.

    t = pixtrans.load("runs/synth", runtime="auto")        # the fastest path that passes verification
    t.runtime_info                                          # which one, and the measurements behind the choice

The family keeps doing the style work in torch (:meth:`~pixtrans.families.base.TranslationModel.generator_inputs`:
painting features, drawing z, encoding reference photos); a runtime runs only
:meth:`~pixtrans.families.base.TranslationModel.generator_module` on those named tensors, so every style mode
works on every runtime.

- ``torch``: fp32 eager is the reference; ``bf16`` autocast with channels-last weights (CPU and CUDA), ``fp16``
  autocast on CUDA only.
- ``onnxruntime`` (fp32, CPU): the module exported in-process (TorchScript exporter, dynamic batch/height/width
  when the family's graph allows, else one graph per input shape).
- ``openvino`` (fp32; bf16/fp16 where the CPU supports them): the same ONNX graph, compiled once (dynamic graphs)
  or once per input shape.

Verification (never silent): the first time a (model, runtime, precision) is used, its output on a real-looking
input (:meth:`~pixtrans.families.base.TranslationModel.example_batch` at the export size, the model's evaluation
style) is compared with :meth:`~pixtrans.families.base.TranslationModel.translate` in fp32: fp32 paths must stay
within max abs :data:`FP32_ATOL`, reduced precision above :data:`MIN_PSNR` dB. The verdict is cached as JSON next
to the graphs in ``$PIXTRANS_CACHE`` (default ``~/.cache/pixtrans``) under a key of the weights, config and
versions. A path that fails raises :class:`RuntimeUnsupported` when asked for by name; ``auto`` skips it.

A model that only the torch fp32 reference can run as configured
(:attr:`~pixtrans.families.base.TranslationModel.runtime_unsupported`, e.g. pix2pix's paper test protocol) refuses
every other path with that reason, and ``auto`` runs the reference and says why. Exact tiled translation
(:mod:`pixtrans.infer.tiling`) always runs on the torch fp32 reference (:data:`TILING_NOTE`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import statistics
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor

from ..errors import PixtransError
from ..version import __version__

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16")
FP32_ATOL = 1e-3
MIN_PSNR = 40.0
EXTRA = "fast"  # the pyproject extra that installs onnxruntime and openvino
# why tiles cannot run on a compiled graph (the translator says it once, naming the runtime it falls back from)
TILING_NOTE = (
    "exact tiling runs the network layer by layer on torch modules (a whole-image statistics pass before each "
    "normalisation, then the normalising pass), which a compiled ONNX Runtime/OpenVINO graph or an autocast copy "
    "cannot be split into"
)


class RuntimeUnsupported(PixtransError):
    """A runtime/precision that cannot run (package missing, unsupported combination) or failed verification."""


def cache_root() -> Path:
    """``$PIXTRANS_CACHE``, else ``$XDG_CACHE_HOME/pixtrans``, else ``~/.cache/pixtrans``."""
    if os.environ.get("PIXTRANS_CACHE"):
        return Path(os.environ["PIXTRANS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pixtrans"


def model_key(model) -> str:
    """A hash of the generator side's tensors, the model config and the library versions."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{__version__}|{torch.__version__}|{model.family}|".encode())
    h.update(model.cfg.model_dump_json().encode())
    h.update(model.data_cfg.model_dump_json().encode())
    for name, t in sorted(model.checkpoint_state().items()):
        h.update(name.encode())
        t = t.detach().cpu().contiguous()
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()


def _psnr(a: Tensor, b: Tensor) -> float:
    """PSNR of images in [-1, 1] (peak-to-peak 2)."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def _shape_key(inputs: dict[str, Tensor]) -> str:
    return "-".join("x".join(map(str, v.shape)) for v in inputs.values())


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- backends
class Backend:
    """``backend(inputs)`` -> the generator's outputs (fp32, on the model's device), coarse to fine."""

    name = ""

    def __init__(self, model, precision: str):
        self.model, self.precision = model, precision

    @property
    def label(self) -> str:
        return f"{self.name} {self.precision}"

    @property
    def is_reference(self) -> bool:
        return self.name == "torch" and self.precision == "fp32"

    def __call__(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        raise NotImplementedError


class TorchBackend(Backend):
    """Eager torch: fp32 as the family builds it; bf16 (CPU/CUDA) and fp16 (CUDA) under autocast on a channels-last
    copy of the weights."""

    name = "torch"

    def __init__(self, model, precision: str):
        super().__init__(model, precision)
        dev = model.device
        if precision == "fp16" and dev.type != "cuda":
            raise RuntimeUnsupported("torch fp16 runs on CUDA only; on the CPU use --precision bf16 or fp32")
        module = model.generator_module()
        self.channels_last = precision != "fp32"
        if self.channels_last:  # a copy: the reference (model.translate) keeps its own layout
            module = copy.deepcopy(module).to(memory_format=torch.channels_last)
        self.module = module.eval()
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.device_type = dev.type

    def __call__(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        args = [
            a.contiguous(memory_format=torch.channels_last) if self.channels_last and a.dim() == 4 else a
            for a in inputs.values()
        ]
        ctx = torch.autocast(self.device_type, self.dtype) if self.dtype is not None else nullcontext()
        with torch.no_grad(), ctx:
            outs = self.module(*args)
        return [o.float().contiguous() for o in outs]


def export_graph(module, inputs: dict[str, Tensor], path: Path, dynamic: bool) -> Path:
    """``module`` (positional ``inputs`` -> tuple of outputs) as an ONNX file (TorchScript exporter, opset 17)
    written atomically; with ``dynamic`` free batch/height/width (2-D inputs: free batch)."""
    names = list(inputs)
    args = tuple(v.detach().float().cpu() for v in inputs.values())
    with torch.no_grad():
        n_out = len(module(*args))
    outs = [f"output{i}" for i in range(n_out)]
    axes = None
    if dynamic:
        four = {0: "batch", 2: "height", 3: "width"}
        axes = {n: (four if a.dim() == 4 else {0: "batch"}) for n, a in zip(names, args)}
        axes.update({o: {0: "batch", 2: f"height{i}", 3: f"width{i}"} for i, o in enumerate(outs)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, args, str(tmp), dynamo=False, input_names=names, output_names=outs, opset_version=17,
                dynamic_axes=axes, do_constant_folding=True,
            )  # fmt: skip
        os.replace(tmp, path)
    except Exception as err:  # the exporter raises many types; one line says which model and why
        tmp.unlink(missing_ok=True)
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise RuntimeUnsupported(f"cannot export the generator to ONNX: {first}; use --runtime torch") from None
    return path


class _GraphBackend(Backend):
    """A backend running an ONNX export of the generator module, one graph (dynamic) or one per input shape."""

    def __init__(self, model, precision: str, folder: Path):
        super().__init__(model, precision)
        self.folder = folder
        self.dynamic = bool(model.export_dynamic)
        self.module = model.generator_module().float().eval()
        self.compiled: dict[str, object] = {}
        self.device = model.device

    def graph(self, inputs: dict[str, Tensor]) -> Path:
        path = self.folder / ("graph-dynamic.onnx" if self.dynamic else f"graph-{_shape_key(inputs)}.onnx")
        if not path.exists():
            export_graph(self.module, inputs, path, self.dynamic)
        return path

    def key(self, inputs: dict[str, Tensor]) -> str:
        """One compiled graph for every shape when the graph is dynamic, else one per input shape."""
        return "dynamic" if self.dynamic else _shape_key(inputs)

    def compile(self, inputs: dict[str, Tensor]):
        raise NotImplementedError

    def run(self, compiled, arrays: dict) -> list:
        raise NotImplementedError

    def __call__(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        key = self.key(inputs)
        compiled = self.compiled.get(key)
        if compiled is None:
            if len(self.compiled) >= 8:  # a few shapes stay compiled
                self.compiled.pop(next(iter(self.compiled)))
            compiled = self.compiled[key] = self.compile(inputs)
        arrays = {n: v.detach().float().cpu().contiguous().numpy() for n, v in inputs.items()}
        return [torch.from_numpy(o).to(self.device) for o in self.run(compiled, arrays)]


class OnnxRuntimeBackend(_GraphBackend):
    """ONNX Runtime, CPU execution provider, fp32."""

    name = "onnxruntime"

    def __init__(self, model, precision: str, folder: Path):
        try:
            import onnxruntime  # noqa: F401
        except ModuleNotFoundError:
            raise RuntimeUnsupported(
                f'runtime onnxruntime is not installed: pip install "pixtrans[{EXTRA}]" (or use --runtime torch)'
            ) from None
        if precision != "fp32":
            raise RuntimeUnsupported(
                f"onnxruntime runs fp32 here (its CPU {precision} kernels are slower than fp32); "
                f"use --precision fp32, or --runtime openvino / torch for {precision}"
            )
        super().__init__(model, precision, folder)

    def compile(self, inputs: dict[str, Tensor]):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self.graph(inputs)), opts, providers=["CPUExecutionProvider"])

    def run(self, compiled, arrays: dict) -> list:
        return compiled.run(None, arrays)


class OpenVINOBackend(_GraphBackend):
    """OpenVINO on the CPU: a dynamic ONNX graph compiled once with free batch/height/width (OpenVINO builds the
    kernels of a new shape on its first call, ~0.1 s, instead of a whole compile per batch size when the studio
    batches requests); a fixed-shape graph reshaped and compiled per input shape. Blobs cached in ``openvino/``."""

    name = "openvino"

    def __init__(self, model, precision: str, folder: Path):
        try:
            import openvino as ov
        except ModuleNotFoundError:
            raise RuntimeUnsupported(
                f'runtime openvino is not installed: pip install "pixtrans[{EXTRA}]" (or use --runtime torch)'
            ) from None
        if model.device.type != "cpu":
            raise RuntimeUnsupported("runtime openvino runs on the CPU here; load with device='cpu'")
        self.core = ov.Core()
        if precision != "fp32":
            caps = self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if precision.upper() not in caps:
                raise RuntimeUnsupported(
                    f"openvino {precision}: this CPU has no {precision} support ({', '.join(caps)}); use fp32"
                )
        super().__init__(model, precision, folder)

    def compile(self, inputs: dict[str, Tensor]):
        ov_model = self.core.read_model(str(self.graph(inputs)))
        if not self.dynamic:
            ov_model.reshape({n: list(v.shape) for n, v in inputs.items()})
        config = {
            "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "CACHE_DIR": str(self.folder / "openvino"),
        }
        compiled = self.core.compile_model(ov_model, "CPU", config)
        return compiled, compiled.create_infer_request()

    def run(self, compiled, arrays: dict) -> list:
        model, request = compiled
        request.infer(arrays)
        return [request.get_output_tensor(i).data.copy() for i in range(len(model.outputs))]


def make_backend(model, runtime: str, precision: str, folder: Path | None = None) -> Backend:
    """The backend for ``runtime``/``precision`` (unverified); ``folder`` holds its graphs (default: the model's
    cache folder)."""
    if runtime not in RUNTIMES:
        raise RuntimeUnsupported(f"runtime {runtime!r}: choose auto, {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise RuntimeUnsupported(f"precision {precision!r}: choose auto, {', '.join(PRECISIONS)}")
    reason = model.runtime_unsupported
    if reason and (runtime, precision) != ("torch", "fp32"):
        raise RuntimeUnsupported(f"{runtime} {precision}: {reason}; use --runtime torch --precision fp32")
    if runtime == "torch":
        return TorchBackend(model, precision)
    if model.device.type != "cpu" and runtime == "onnxruntime":
        raise RuntimeUnsupported("runtime onnxruntime runs on the CPU here; load with device='cpu'")
    folder = folder or model_folder(model)
    return (OnnxRuntimeBackend if runtime == "onnxruntime" else OpenVINOBackend)(model, precision, folder)


_KEYS: dict[int, tuple[object, str]] = {}


def model_folder(model) -> Path:
    """The cache folder of this model's graphs and verdicts (the key is computed once per model object)."""
    got = _KEYS.get(id(model))
    if got is None or got[0] is not model:
        got = _KEYS[id(model)] = (model, model_key(model))
    return cache_root() / "runtimes" / got[1]


# ---------------------------------------------------------------------------------------------- verification
def example(model, size: tuple[int, int] | None = None, batch: int = 1) -> dict:
    """A prepared, real-looking batch at ``size`` (W, H; default the export size) for verification and bench."""
    w, h = size or model.export_size()
    with torch.no_grad():
        return model.example_batch(batch, h, w, torch.Generator().manual_seed(0))


def compare(outs: list[Tensor], ref: list[Tensor]) -> dict:
    """Max abs difference and PSNR of ``outs`` vs ``ref`` (every output scale)."""
    if len(outs) != len(ref) or any(a.shape != b.shape for a, b in zip(outs, ref)):
        shapes = [tuple(o.shape) for o in outs], [tuple(r.shape) for r in ref]
        return {"max_abs": math.inf, "psnr": -math.inf, "error": f"output shapes {shapes[0]} != {shapes[1]}"}
    max_abs = max(float((a.float() - b.float()).abs().max()) for a, b in zip(outs, ref))
    return {"max_abs": max_abs, "psnr": min(_psnr(a, b) for a, b in zip(outs, ref))}


def passes(precision: str, result: dict) -> bool:
    if "error" in result:
        return False
    return result["max_abs"] <= FP32_ATOL if precision == "fp32" else result["psnr"] >= MIN_PSNR


def _criterion(precision: str) -> str:
    return f"max abs <= {FP32_ATOL:g}" if precision == "fp32" else f"PSNR >= {MIN_PSNR:g} dB"


def verify(backend: Backend, x: dict | None = None, style=None, use_cache: bool = True) -> dict:
    """Compare ``backend`` with the model's torch fp32 :meth:`translate` on ``x`` (default :func:`example`) under
    ``style`` (default the model's evaluation style); the verdict is cached per model, runtime and precision.
    Returns ``{"runtime", "precision", "ok", "max_abs", "psnr", "criterion", "size", ...}``."""
    model = backend.model
    path = None
    if use_cache and x is None and not backend.is_reference:
        path = model_folder(model) / f"verdict-{backend.name}-{backend.precision}-{model.device.type}.json"
        if path.exists():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                pass
    x = example(model) if x is None else x
    style = model.eval_style() if style is None else style
    with torch.no_grad():
        ref = model.translate(x, style).scales
        inputs, _ = model.generator_inputs(x, style)
        try:
            outs = backend(inputs)
        except RuntimeUnsupported:
            raise
        except Exception as err:  # a runtime's own error types
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            outs, result = None, {"max_abs": math.inf, "psnr": -math.inf, "error": first}
    if outs is not None:
        result = compare(outs, ref)
    h, w = x["input"].shape[-2:]
    verdict = {
        "runtime": backend.name,
        "precision": backend.precision,
        "device": model.device.type,
        **result,
        "ok": passes(backend.precision, result),
        "criterion": _criterion(backend.precision),
        "size": f"{w}x{h}",
        "pixtrans": __version__,
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, verdict)
    return verdict


def verified(model, runtime: str, precision: str, use_cache: bool = True) -> tuple[Backend, dict]:
    """A backend that passed :func:`verify`; a failure is a :class:`RuntimeUnsupported` naming the numbers."""
    backend = make_backend(model, runtime, precision)
    if backend.is_reference:
        return backend, {"runtime": "torch", "precision": "fp32", "ok": True, "reference": True}
    verdict = verify(backend, use_cache=use_cache)
    if not verdict["ok"]:
        why = verdict.get("error") or f"max abs {verdict['max_abs']:.3g}, PSNR {verdict['psnr']:.1f} dB"
        raise RuntimeUnsupported(
            f"{backend.label} does not match torch fp32 on this model ({why}; needs {verdict['criterion']}, "
            f"checked at {verdict['size']}); use --runtime torch"
        )
    return backend, verdict


# ---------------------------------------------------------------------------------------------- choice
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU's own instructions (AVX-512 and newer); on older CPUs torch emulates
    bf16, many times slower than fp32 (an AVX2 machine here: 169 s for unet_256's first bf16 call vs 3 s fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def candidates(device: torch.device, precision: str) -> list[tuple[str, str]]:
    """(runtime, precision) pairs ``auto`` considers for ``precision`` (``auto``: every precision). On a CPU without
    bf16 instructions torch bf16 is left out: verifying it alone would take minutes and it cannot win."""
    if device.type == "cuda":
        pairs = [("torch", "fp32"), ("torch", "fp16"), ("torch", "bf16")]
    else:
        skip = {("onnxruntime", "bf16")} | (set() if cpu_has_bf16() else {("torch", "bf16")})
        pairs = [(r, p) for p in ("fp32", "bf16") for r in RUNTIMES if (r, p) not in skip]
    return [(r, p) for r, p in pairs if precision == "auto" or p == precision]


def time_backends(backends: list[Backend], inputs: dict[str, Tensor], rounds: int = 3) -> list[float]:
    """Median seconds per call of each backend, measured interleaved (one call of each per round, after a warm-up)."""
    times: list[list[float]] = [[] for _ in backends]
    for b in backends:
        b(inputs)
    for _ in range(rounds):
        for i, b in enumerate(backends):
            t0 = time.perf_counter()
            b(inputs)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def select(model, runtime: str = "torch", precision: str = "auto", use_cache: bool = True, log=None):
    """(backend, runtime_info) for ``runtime``/``precision``. ``auto`` runtime: every candidate is verified, the
    passing ones timed interleaved at the export size, the fastest kept (the choice is cached per model)."""
    if precision != "auto" and precision not in PRECISIONS:
        raise RuntimeUnsupported(f"precision {precision!r}: choose auto, {', '.join(PRECISIONS)}")
    if runtime != "auto":
        backend, verdict = verified(model, runtime, "fp32" if precision == "auto" else precision, use_cache)
        return backend, {"runtime": backend.name, "precision": backend.precision, "auto": False, "verdict": verdict}
    reason = model.runtime_unsupported
    if reason and precision in ("auto", "fp32"):  # nothing to choose: the torch reference, and why
        if log:
            log(f"runtime auto: torch fp32 ({reason})")
        return make_backend(model, "torch", "fp32"), {"runtime": "torch", "precision": "fp32", "auto": True,
                                                      "reference": True, "note": reason}  # fmt: skip
    choice_path = model_folder(model) / f"auto-{precision}-{model.device.type}-t{torch.get_num_threads()}.json"
    if use_cache and choice_path.exists():
        try:
            info = json.loads(choice_path.read_text())
            backend, _ = verified(model, info["runtime"], info["precision"], use_cache)
            return backend, info
        except (OSError, ValueError, KeyError, RuntimeUnsupported):
            pass
    tried, ok = [], []
    for r, p in candidates(model.device, precision):
        try:
            backend, verdict = verified(model, r, p, use_cache)
        except RuntimeUnsupported as err:
            tried.append({"runtime": r, "precision": p, "ok": False, "reason": str(err)})
            continue
        ok.append((backend, verdict))
    if not ok:  # only a fp16/bf16-only request on a machine without them can end here
        reasons = "; ".join(t["reason"] for t in tried)
        raise RuntimeUnsupported(f"no runtime passes at precision {precision}: {reasons}")
    x = example(model)
    inputs, _ = model.generator_inputs(x, model.eval_style())
    seconds = time_backends([b for b, _ in ok], inputs)
    for (b, v), s in zip(ok, seconds):
        tried.append({"runtime": b.name, "precision": b.precision, "ok": True, "latency_s": s,
                      "max_abs": v.get("max_abs", 0.0), "psnr": v.get("psnr", math.inf)})  # fmt: skip
    best = min(range(len(ok)), key=lambda i: seconds[i])
    backend = ok[best][0]
    h, w = x["input"].shape[-2:]
    info = {"runtime": backend.name, "precision": backend.precision, "auto": True, "measured_at": f"{w}x{h}",
            "threads": torch.get_num_threads(), "candidates": tried}  # fmt: skip
    if use_cache:
        choice_path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(choice_path, info)
    if log:
        log(f"runtime auto: chose {backend.label} ({seconds[best] * 1e3:.0f} ms at {w}x{h})")
    return backend, info
