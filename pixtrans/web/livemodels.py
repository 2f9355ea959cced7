"""The studio's in-page models: each loaded checkpoint exported once (fp32 ONNX + sidecar, verified against PyTorch
by :func:`pixtrans.infer.web_export.web_model`) into a temporary folder, on first request, for ONNX Runtime Web."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from ..errors import PixtransError
from ..infer.web_export import web_model
from . import ort_runtime
from .studio import ModelEntry


class WebModels:
    """Exports made on demand and kept until :meth:`close` (after which they are made again on demand); one export per
    model, even under concurrent requests."""

    def __init__(self):
        self._dir: Path | None = None
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self._done: dict[str, dict] = {}

    def runtime(self) -> str | None:
        """The installed ONNX Runtime Web version, or None (then every model runs on the server)."""
        return ort_runtime.installed()

    def backends(self) -> list[str]:
        """The in-page backends the installed runtime allows (``webgpu``, ``wasm``), preferred first."""
        return ort_runtime.backends()

    def folder(self, m: ModelEntry) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="pixtrans-web-"))
            return self._dir / m.id

    def get(self, m: ModelEntry) -> dict:
        """``{"available": True, "sidecar": ...}`` once exported, or ``{"available": False, "why": ...}``."""
        if self.runtime() is None:
            return {"available": False, "why": "ONNX Runtime Web is not installed on the server (run `make install`, "
                    "which needs npm); models run on the server"}  # fmt: skip
        with self._lock:
            lock = self._model_locks.setdefault(m.id, threading.Lock())
        with lock:
            if m.id not in self._done:
                try:
                    side = web_model(m.checkpoint, self.folder(m), log=lambda *_: None)
                    self._done[m.id] = {"available": True, "sidecar": side}
                except (PixtransError, ImportError, RuntimeError, ValueError) as err:
                    why = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
                    self._done[m.id] = {"available": False, "why": f"cannot export {m.id} for the browser: {why}"}
            return self._done[m.id]

    def onnx_path(self, m: ModelEntry) -> Path | None:
        res = self._done.get(m.id)
        return self.folder(m) / "model.onnx" if res and res["available"] else None

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            self._done.clear()  # a restarted app exports again into a fresh folder
