"""Errors users see: each names the file or key and says what to do; the checks that turn failed allocations and
unwritable output folders into such errors."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


class PixtransError(Exception):
    """Base class of every error pixtrans raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(PixtransError):
    """A config key is unknown, has the wrong type, or holds an invalid value."""


class DataError(PixtransError):
    """An input file is unreadable, has the wrong mode or size, lacks a partner, or holds out-of-range labels."""

    def __init__(self, path, problem: str = "", hint: str = ""):
        self.path, self.problem, self.hint = str(path), problem, hint
        super().__init__(f"{path}: {problem}" + (f" — {hint}" if hint else ""))

    def __reduce__(self):  # survives the trip back from DataLoader worker processes
        return type(self), (self.path, self.problem, self.hint)


class CheckpointError(PixtransError):
    """A checkpoint or weights file is missing, incomplete, or does not fit the model."""


class WeightsMissingError(PixtransError):
    """Pretrained weights (e.g. VGG19) are needed but were not provided."""


class OutOfMemory(PixtransError):
    """The accelerator or the machine ran out of memory ``doing`` something; ``hint`` says what to lower (empty:
    the caller adds the advice that fits its command or route)."""

    def __init__(self, doing: str, hint: str = "", detail: str = ""):
        self.doing, self.hint, self.detail = doing, hint, detail
        super().__init__(self.text())

    def text(self, hint: str | None = None) -> str:
        """The one-line message, with ``hint`` in place of the stored one when given."""
        hint = self.hint if hint is None else hint
        detail = f" ({self.detail})" if self.detail else ""
        return f"out of memory {self.doing}{detail}" + (f": {hint}" if hint else "")

    def __reduce__(self):
        return type(self), (self.doing, self.hint, self.detail)


# What torch, its allocators and its kernels (CUDA, cuDNN/cuBLAS, MPS, XPU, oneDNN/MKL, the CPU allocator) say when
# an allocation fails, and the DataLoader's report of a worker that the kernel's OOM killer ended.
_OOM_TEXT = re.compile(
    r"out of memory|can't allocate memory|cannot allocate memory|not enough memory|could not allocate|"
    r"failed to allocate|_ALLOC_FAILED|bad_alloc|killed by signal: Killed",
    re.IGNORECASE,
)
_TRIED = re.compile(r"tried to allocate ([\d.]+ ?[KMGT]i?B|\d+ bytes)", re.IGNORECASE)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a failed allocation: ``MemoryError``, ``torch.OutOfMemoryError``, ENOMEM, or a
    ``RuntimeError`` whose message says so (torch reports most of them that way)."""
    if isinstance(err, (MemoryError, OutOfMemory)) or type(err).__name__ == "OutOfMemoryError":
        return True
    if isinstance(err, OSError):
        return err.errno == errno.ENOMEM
    return isinstance(err, RuntimeError) and bool(_OOM_TEXT.search(str(err)))


def out_of_memory(err: BaseException, doing: str, hint: str = "") -> OutOfMemory:
    """The :class:`OutOfMemory` for failed allocation ``err``, with how much it asked for when the message says."""
    if isinstance(err, OutOfMemory):
        return err
    m = _TRIED.search(str(err))
    amount = m.group(1) if m else ""
    if amount.endswith("bytes"):
        n = int(amount.split()[0])
        amount = f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
    return OutOfMemory(doing, hint, f"tried to allocate {amount}" if amount else "")


@contextmanager
def memory_guard(doing: str | Callable[[], str], hint: str | Callable[[], str] = ""):
    """Turn a failed allocation inside the block into :class:`OutOfMemory` (``doing``/``hint``: text or a function
    called only then, so they can name the state at the failure); every other exception passes unchanged."""
    try:
        yield
    except OutOfMemory:
        raise
    except (MemoryError, RuntimeError, OSError) as err:
        if not is_out_of_memory(err):
            raise
        raise out_of_memory(err, doing() if callable(doing) else doing, hint() if callable(hint) else hint) from err


def writable_folder(path: str | Path, flag: str = "--out", file: bool = False) -> Path:
    """Check, before any work, that output can be written at ``path`` (a folder, or with ``file`` a file in its
    folder); a :class:`ConfigError` naming ``flag`` and the path otherwise. Nothing is left behind: missing folders
    are made later, by whoever writes. The test is a real write (a probe file made and removed in the nearest
    existing folder), not ``os.access``, which says yes to root on a read-only file system."""
    out = Path(path)
    if file and out.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; give a file name")
    if not file and out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: is a file, not a folder; choose another {flag}")
    start = out.absolute().parent if file else out.absolute()
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{flag} {out}: {existing} is a file, so no folder can be made there; choose another {flag}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".pixtrans-write-test-", dir=existing)
    except OSError as err:
        raise ConfigError(
            f"{flag} {out}: cannot write in {existing} ({err.strerror or err}); choose another {flag}"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return out
