"""Cost of one forward pass: parameters, FLOPs, latency and peak memory (``pixtrans bench`` calls these).

FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as **2 FLOPs**
(a 3x3 conv from C to C' channels on an HxW output costs 2·9·C·C'·H·W; bias adds and activations are not
counted). Papers that quote "FLOPs" often mean multiply-adds: divide ``gflops`` by 2 (``gmacs``) to compare.

Peak memory:

- CUDA: ``torch.cuda.max_memory_allocated`` over the timed runs after ``reset_peak_memory_stats`` (everything the
  caching allocator handed out: weights, input, activations, cuDNN workspaces).
- CPU: live tensor bytes tracked with a :class:`~torch.utils._python_dispatch.TorchDispatchMode` during one
  forward: every storage an op creates is added when it appears and subtracted when it is freed (a weakref
  finalizer on the storage), views and in-place results are not counted twice; the peak of that running sum
  plus the weights, buffers and inputs already resident is ``peak_mem_mb``. It counts all activations and the
  output, not scratch buffers that a kernel allocates and frees inside a single op (e.g. oneDNN workspaces),
  so it is a lower bound of the process's extra RSS, independent of allocator caching.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import statistics
import threading
import time
import weakref
from contextlib import contextmanager
from functools import partial

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ConfigError

FLOPS_CONVENTION = "FlopCounterMode: one multiply-add = 2 FLOPs (gmacs = gflops / 2); bias and activations not counted"
MB = 1024**2


def _storage_key(t: Tensor) -> int:
    return t.untyped_storage().data_ptr()


class LiveTensorBytes(TorchDispatchMode):
    """Running sum and peak of the bytes of tensor storages created while the mode is active (see module doc)."""

    def __init__(self, params: dict[int, int] | None = None):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: set[int] = set()
        self._resident: set[int] = set()
        self._params = params or {}  # storage data_ptr -> numel of a parameter
        self.params_used: set[int] = set()

    def resident(self, tensors) -> None:
        """Storages that exist already (weights, inputs): never counted as new."""
        for t in tensors:
            self._resident.add(_storage_key(t))

    def _free(self, key: int, nbytes: int) -> None:
        self._live.discard(key)
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._params:
            for a in tree_flatten((args, kwargs))[0]:
                if isinstance(a, Tensor) and not a.is_meta:
                    key = _storage_key(a)
                    if key in self._params:
                        self.params_used.add(key)
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, Tensor) or t.is_meta:
                continue
            st = t.untyped_storage()
            key, nbytes = st.data_ptr(), st.nbytes()
            if nbytes == 0 or key in self._live or key in self._resident:
                continue
            self._live.add(key)
            self.current += nbytes
            self.peak = max(self.peak, self.current)
            weakref.finalize(st, self._free, key, nbytes)
        return out


@contextmanager
def _num_threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _nbytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            total += st.nbytes()
    return total


def benchmark(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    runs: int = 5,
    warmup: int = 2,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    threads: int | None = None,
) -> dict:
    """Measure one forward of ``module(*inputs)`` under ``torch.inference_mode``.

    The module is moved to ``device``/``dtype`` and put in eval mode in place (its train flag is restored).
    Floating inputs are cast to ``dtype``. ``threads`` sets torch's CPU threads for the measurement.
    Returns ``params``, ``params_used`` (parameters the forward touches), ``gflops``, ``gmacs``,
    ``flops_convention``, ``latency_s`` (median), ``latency_all``, ``peak_mem_mb``, ``weights_mb``,
    ``peak_mem_method``, ``backend``, ``device``, ``dtype``, ``threads``, ``size`` ("WxH" of the first input),
    ``input_shapes``, ``runs``, ``warmup``, ``torch``.
    """
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine (use --device cpu)")
    was_training = module.training
    module.to(device=dev, dtype=dtype).eval()
    xs = tuple(x.to(dev, dtype) if torch.is_floating_point(x) else x.to(dev) for x in inputs)
    params = list(module.parameters())
    param_numel = {}
    for p in params:
        param_numel.setdefault(_storage_key(p), 0)
        param_numel[_storage_key(p)] += p.numel()
    state = params + list(module.buffers())
    weights_bytes = _nbytes(state)
    resident = state + list(xs)

    try:
        with _num_threads(threads), torch.inference_mode():
            tracker = LiveTensorBytes(param_numel)
            tracker.resident(resident)
            with FlopCounterMode(display=False) as flops, tracker:
                module(*xs)
            _sync(dev)
            for _ in range(warmup):
                module(*xs)
            _sync(dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            times = []
            for _ in range(runs):
                _sync(dev)
                t0 = time.perf_counter()
                module(*xs)
                _sync(dev)
                times.append(time.perf_counter() - t0)
            if dev.type == "cuda":
                peak = torch.cuda.max_memory_allocated(dev)
                method = "torch.cuda.max_memory_allocated"
            else:
                peak = _nbytes(resident) + tracker.peak
                method = "live tensor bytes (TorchDispatchMode) + resident weights and inputs"
            used = sum(param_numel[k] for k in tracker.params_used)
            n_threads = torch.get_num_threads()
    finally:
        module.train(was_training)

    total = flops.get_total_flops()
    h, w = (xs[0].shape[-2], xs[0].shape[-1]) if xs and xs[0].dim() >= 2 else (0, 0)
    return {
        "params": sum(p.numel() for p in params),
        "params_used": used,
        "gflops": total / 1e9,
        "gmacs": total / 2e9,
        "flops_convention": FLOPS_CONVENTION,
        "latency_s": statistics.median(times),
        "latency_all": times,
        "peak_mem_mb": peak / MB,
        "weights_mb": weights_bytes / MB,
        "peak_mem_method": method,
        "backend": dev.type,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name(),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": n_threads,
        "size": f"{w}x{h}",
        "input_shapes": [list(x.shape) for x in xs],
        "runs": runs,
        "warmup": warmup,
        "torch": torch.__version__,
    }


def random_input(model, width: int, height: int, batch: int = 1, seed: int = 0) -> Tensor:
    """The prepared generator input of :meth:`TranslationModel.export_inputs` (a blocky one-hot label map
    (+ boundary map) for label models, noise in [-1, 1] for image models): (batch, in_channels, H, W)."""
    return model.export_inputs(batch, height, width, torch.Generator().manual_seed(seed))["input"]


def _check_size(model, width: int, height: int, batch: int) -> None:
    if width < 1 or height < 1 or batch < 1:
        raise ConfigError(f"--size {width}x{height} (batch {batch}): sizes and batch must be positive")
    m = int(model.size_multiple)
    if width % m or height % m:
        raise ConfigError(
            f"--size {width}x{height}: the {model.family or type(model).__name__} model needs width and height "
            f"that are multiples of {m} (e.g. {-(-width // m) * m}x{-(-height // m) * m})"
        )


def bench_model(model, width: int, height: int, batch: int = 1, **kw) -> dict:
    """:func:`benchmark` of ``model.generator_module()`` -- the module the translator runs on the torch runtime --
    on :meth:`generator_inputs` of a real-looking (batch, H, W) example in the model's evaluation style.

    ``kw`` goes to :func:`benchmark` (runs, warmup, device, dtype, threads). Adds ``family`` and ``batch``.
    """
    _check_size(model, width, height, batch)
    # the whole model, not only the generator: the style work may use more than G (encoders, buffers)
    model.to(device=torch.device(kw.get("device", "cpu")), dtype=kw.get("dtype", torch.float32)).eval()
    with torch.no_grad():
        x = model.example_batch(batch, height, width, torch.Generator().manual_seed(0))
        inputs, _ = model.generator_inputs(x, model.eval_style())
    out = benchmark(model.generator_module(), tuple(inputs.values()), **kw)
    out.update(family=model.family, batch=batch)
    return out


def all_runtimes(device: torch.device) -> list[tuple[str, str]]:
    """Every (runtime, precision) ``pixtrans bench --runtime all`` measures on ``device``."""
    if device.type == "cuda":
        return [("torch", "fp32"), ("torch", "fp16"), ("torch", "bf16")]
    return [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Samples the process RSS every millisecond in a thread: ``with _PeakRSS() as p: ...; p.peak - p.start``."""

    def __enter__(self):
        with contextlib.suppress(OSError, AttributeError):  # freed heap back to the OS: growth is this block's
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def bench_runtimes(
    model, width: int, height: int, pairs: list[tuple[str, str]], runs: int = 5, warmup: int = 1, batch: int = 1,
    folder=None, log=None,
) -> list[dict]:  # fmt: skip
    """One table row per (runtime, precision): the exact backend the translator would use, on the same
    :meth:`generator_inputs` (real-looking example, evaluation style), timed interleaved (one call of each per
    round) in this process. Rows: ``runtime``, ``precision``, ``latency_s`` (median), ``speedup`` (vs torch fp32
    when measured), ``max_abs``/``psnr`` vs torch fp32 :meth:`translate`, ``ok`` (passes the runtime checks),
    ``setup_s`` (export/compile + first call), ``peak_mem_mb`` (process RSS growth while the runtime is set up and
    first run: weight copies, graph, workspaces, activations; not the weights torch already holds) or ``error``."""
    from .runtimes import RuntimeUnsupported, compare, make_backend, passes

    _check_size(model, width, height, batch)
    model.eval()
    with torch.no_grad():
        x = model.example_batch(batch, height, width, torch.Generator().manual_seed(0))
        style = model.eval_style()
        ref = model.translate(x, style).scales
        inputs, _ = model.generator_inputs(x, style)
    rows, live = [], []
    for runtime, precision in pairs:
        row = {"runtime": runtime, "precision": precision, "size": f"{width}x{height}", "batch": batch}
        rows.append(row)
        try:
            t0 = time.perf_counter()
            with _PeakRSS() as mem:
                backend = make_backend(model, runtime, precision, folder)
                if backend.is_reference and model.runtime_unsupported:  # what translate runs: the family's own
                    backend = partial(_reference, model, x, style)
                outs = backend(inputs)
            row["setup_s"] = time.perf_counter() - t0
            row["peak_mem_mb"] = (mem.peak - mem.start) / MB
        except RuntimeUnsupported as err:
            row["error"] = str(err)
            continue
        except Exception as err:  # a runtime's own error types: the row says why
            row["error"] = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            continue
        res = compare(outs, ref)
        row.update(max_abs=res["max_abs"], psnr=res["psnr"], ok=passes(precision, res))
        live.append((row, backend))
        if log:
            log(f"bench: {runtime} {precision} ready ({row['setup_s']:.1f} s)")
    times: list[list[float]] = [[] for _ in live]
    with torch.no_grad():
        for _ in range(warmup):
            for _, b in live:
                b(inputs)
        for _ in range(runs):
            for i, (_, b) in enumerate(live):
                t0 = time.perf_counter()
                b(inputs)
                times[i].append(time.perf_counter() - t0)
    for (row, _), t in zip(live, times):
        row["latency_s"] = statistics.median(t)
        row["latency_all"] = t
    base = next((r for r in rows if r["runtime"] == "torch" and r["precision"] == "fp32" and "latency_s" in r), None)
    for r in rows:
        if base is not None and "latency_s" in r:
            r["speedup"] = base["latency_s"] / r["latency_s"]
        r.update(family=model.family, threads=torch.get_num_threads(), device=_cpu_name(), torch=torch.__version__)
    return rows


def _reference(model, x: dict, style, inputs: dict) -> list[Tensor]:
    """The torch reference as :meth:`translate` runs it (for models only it can run, e.g. pix2pix's paper test)."""
    return model.translate(x, style).scales


def runtime_table(rows: list[dict]) -> str:
    """The rows of :func:`bench_runtimes` as a Markdown table."""
    out = [
        "| runtime | precision | median latency | speedup vs torch fp32 | PSNR vs fp32 | max abs vs fp32 | verified "
        "| peak memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['runtime']} | {r['precision']} | n/a: {r['error']} | | | | | |")
            continue
        psnr = "exact" if r["psnr"] == float("inf") else f"{r['psnr']:.1f} dB"
        speed = f"{r['speedup']:.2f}x" if "speedup" in r else ""
        out.append(
            f"| {r['runtime']} | {r['precision']} | {r['latency_s'] * 1e3:.0f} ms | {speed} | {psnr} | "
            f"{r['max_abs']:.2g} | {'yes' if r['ok'] else 'no'} | {r['peak_mem_mb']:.0f} MB |"
        )
    return "\n".join(out)
