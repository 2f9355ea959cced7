"""Process-wide runtime settings that make CPU training faster: glibc malloc thresholds.

With glibc's defaults, PyTorch's large CPU buffers (activations, gradients, Adam temporaries) are returned to the
kernel when freed and page-faulted back in on the next step: measured here on pix2pix unet_256 at 128 px, one
step made ~55,000 minor page faults and spent ~0.3 s of its ~1.5 CPU seconds in the kernel. Raising the mmap
threshold and the trim threshold keeps freed memory in the heap for reuse (7,000 faults, 0.1 s system time). This is
what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do, but applied with ``mallopt`` from inside the process,
so it needs no re-exec and works under ``torchrun`` too.

Skipped when the user chose malloc settings (any ``MALLOC_*`` variable), preloaded another allocator (jemalloc or
tcmalloc in ``LD_PRELOAD``), the C library is not glibc, or ``PIXTRANS_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum on 64-bit systems: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of freed heap for reuse instead of returning it after every step

_applied: bool | None = None


def _user_choice() -> str | None:
    if os.environ.get("PIXTRANS_MALLOC", "").lower() in ("default", "off", "0"):
        return "PIXTRANS_MALLOC"
    if any(k.startswith("MALLOC_") for k in os.environ):
        return "MALLOC_* variables"
    preload = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload or "tcmalloc" in preload or "mimalloc" in preload:
        return "LD_PRELOAD allocator"
    return None


def tune_malloc() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once); True when they were set."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if _user_choice() is not None:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version  # glibc only (musl and macOS have no mallopt thresholds)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    version.restype = ctypes.c_char_p
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def configure_process() -> None:
    """What the CLI does before any command: OpenMP threads that yield, and the malloc thresholds."""
    # OpenMP threads that busy-wait make small convolutions many times slower whenever the cores are shared
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tune_malloc()
