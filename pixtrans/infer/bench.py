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

import platform
import statistics
import time
import weakref
from contextlib import contextmanager

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


def bench_model(model, width: int, height: int, batch: int = 1, **kw) -> dict:
    """:func:`benchmark` of ``model.inference_module()`` (eval mode) on a random (batch, in_channels, H, W) input.

    ``kw`` goes to :func:`benchmark` (runs, warmup, device, dtype, threads). Adds ``family`` and ``batch``.
    """
    if width < 1 or height < 1 or batch < 1:
        raise ConfigError(f"--size {width}x{height} (batch {batch}): sizes and batch must be positive")
    m = int(model.size_multiple)
    if width % m or height % m:
        raise ConfigError(
            f"--size {width}x{height}: the {model.family or type(model).__name__} model needs width and height "
            f"that are multiples of {m} (e.g. {-(-width // m) * m}x{-(-height // m) * m})"
        )
    # the whole model, not only the exported module: generate() may use more than G (encoders, buffers)
    model.to(device=torch.device(kw.get("device", "cpu")), dtype=kw.get("dtype", torch.float32)).eval()
    xs = model.export_inputs(batch, height, width, torch.Generator().manual_seed(0)).values()
    out = benchmark(model.inference_module(), tuple(xs), **kw)
    out.update(family=model.family, batch=batch)
    return out
