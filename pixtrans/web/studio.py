"""The studio's engine, free of HTTP: loaded models, the test samples of ``--data``, style handling, translation
into PNG data URLs with per-image PSNR/SSIM, reference photos, and a bounded single-worker inference queue."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data import transforms as T
from ..data.io import grey, to_tensor_ids, to_tensor_image
from ..data.labels import colorize
from ..data.palettes import palette as default_palette
from ..errors import ConfigError, DataError, OutOfMemory, PixtransError, is_out_of_memory, out_of_memory
from ..eval.metrics import per_image_metrics
from ..families.base import round_up
from ..infer.translator import Translator, load
from .uploads import ClientError

log = logging.getLogger(__name__)
REFERENCE = re.compile(r"^(upload:[0-9a-f]{12}|sample:\d{1,9})$")
FITS = ("model", "full", "tile")
# The studio's advice when a translation runs out of memory (answered 503; the server keeps serving).
OOM_HINT = "the server is short of memory for this request; try fit 'tile' or 'model', a smaller image or fewer models"


def oom_message(err: OutOfMemory) -> str:
    return err.text(OOM_HINT)


# ---------------------------------------------------------------------------- small helpers
def png_data_url(arr: np.ndarray) -> str:
    """uint8 (H, W, 3) or (H, W) -> ``data:image/png;base64,...``."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) in [-1, 1] -> uint8 (H, W, 3)."""
    img = img[0] if img.dim() == 4 else img
    arr = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]


def finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def jsonable(obj: Any) -> Any:
    """A style dict as plain JSON (tensors to lists, int keys to strings)."""

    def conv(v):
        if isinstance(v, torch.Tensor):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        return str(v)

    return json.loads(json.dumps(obj, default=conv))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


# ---------------------------------------------------------------------------- models
@dataclass
class ModelEntry:
    """A loaded checkpoint with what the page needs to show and drive it."""

    id: str
    name: str
    translator: Translator
    checkpoint: Path
    class_names: list[str]
    palette: list[list[int]]
    things: list[int]
    ratings_key: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def cfg(self):
        return self.translator.cfg

    @property
    def data(self):
        return self.translator.cfg.data

    @property
    def family(self) -> str:
        return self.translator.family

    @property
    def kind(self) -> str:
        return "label" if self.data.label_nc > 0 else "image"

    @property
    def multiple(self) -> int:
        return int(self.translator.model.size_multiple)

    def style_caps(self) -> dict:
        """What styles the model takes (the family's :class:`StyleSchema` as JSON)."""
        return self.translator.model.style_schema().model_dump(include={"kind", "clusters", "seed", "reference"})

    def resolution(self, aspect: float | None = None) -> tuple[int, int]:
        """(W, H) the model was trained at (the canvas size for drawing), a multiple of its size multiple."""
        d, m = self.data, self.multiple
        aspect = aspect or self.translator.model.aspect_ratio
        if d.preprocess in ("resize_and_crop", "crop", "none"):
            w, h = d.crop_size, d.crop_size
        elif d.preprocess == "scale_width":
            w, h = d.load_size, d.load_size / aspect
        else:
            w, h = d.crop_size, d.crop_size / aspect
        return round_up(int(round(w)), m), round_up(int(round(h)), m)

    def tile_size(self) -> int:
        m = self.multiple
        return max(m, self.data.crop_size // m * m)

    def info(self) -> dict:
        t = self.translator
        metrics = {k: finite(v) for k, v in (t.meta.get("metrics") or {}).items() if isinstance(v, (int, float))}
        w, h = self.resolution()
        d = self.data
        return {
            "id": self.id,
            "name": self.name,
            "family": self.family,
            "checkpoint": self.checkpoint.name,
            "step": int(t.meta.get("step", 0) or 0),
            "kind": self.kind,
            "label_nc": d.label_nc,
            "class_names": self.class_names,
            "palette": self.palette,
            "things": self.things,
            "contain_dontcare": d.contain_dontcare,
            "no_instance": d.no_instance,
            "input_nc": d.input_nc,
            "width": w,
            "height": h,
            "size_multiple": self.multiple,
            "preprocess": d.preprocess,
            "params": int(t.num_params),
            "metrics": metrics,
            "style": self.style_caps(),
            "label_set": self.label_set(),
        }

    def label_set(self) -> str:
        """A key shared by models that read the same label maps (same classes)."""
        if self.kind == "image":
            return f"image{self.data.input_nc}"
        return f"{self.data.label_nc}:" + hashlib.sha1("|".join(self.class_names).encode()).hexdigest()[:8]


def load_models(
    checkpoints: list[str | Path], device: str = "auto", runtime: str = "torch", precision: str = "auto", log=None
) -> list[ModelEntry]:
    """Load every checkpoint (run or checkpoint folder) on ``runtime``/``precision`` (see
    :mod:`pixtrans.infer.runtimes`); ids are unique slugs of the run names."""
    from ..data.datasets import dataset_info

    entries: list[ModelEntry] = []
    used: set[str] = set()
    for path in checkpoints:
        t = load(path, device=device, runtime=runtime, precision=precision)
        t.notify = lambda note, p=path: log.info("%s: %s", p, note)  # pixtrans serve prints them at start
        if log:
            log(f"{path}: runtime {t.runtime_info['runtime']} {t.runtime_info['precision']}")
        ck = Path(t.path)
        run = ck.parent.parent if ck.parent.name == "checkpoints" else ck
        name = run.name
        mid, k = _slug(name), 2
        while mid in used:
            mid, k = f"{_slug(name)}-{k}", k + 1
        used.add(mid)
        d = t.cfg.data
        try:
            info = dataset_info(d)
        except PixtransError:
            info = {"class_names": [], "palette": [], "things": []}
        names = t.class_names if t.meta.get("class_names") else (info["class_names"] or t.class_names)
        pal = t.palette or info["palette"] or default_palette(max(d.label_nc, 1))
        pal = [list(map(int, c)) for c in pal][: max(d.label_nc, 0)]
        things = [int(c) for c in info.get("things", []) if 0 <= int(c) < d.label_nc]
        entries.append(ModelEntry(mid, name, t, ck, list(names), pal, things, ratings_key=str(ck.resolve())))
    return entries


# ---------------------------------------------------------------------------- inference queue
class Busy(Exception):
    """The inference queue is full."""


_TURN = threading.local()  # the InferenceQueue whose turn this thread holds (queue, active, fresh)


class InferenceQueue:
    """Translations run on ``workers`` threads that take turns: one at a time holds :attr:`gate` (so torch work never
    overlaps, as with one worker); at most ``max_pending`` jobs wait or run at once. A job gives up its turn for
    light per-request work (:func:`outside_turn`: preparing inputs, PNG encoding), which then overlaps another job's
    generator call, and while it waits in a :class:`BatchingBackend`, where concurrent requests for one model meet
    and run as a batch."""

    def __init__(self, max_pending: int = 4, workers: int = 1):
        self.max_pending = max(1, int(max_pending))
        self.workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self.gate = threading.Condition()
        self._pending = 0
        self._fresh = 0  # jobs in a worker that have not reached a generator yet (a forming batch waits for them)
        self._lock = threading.Lock()

    def in_turn(self) -> bool:
        """Whether the calling thread is a worker running a job (and holds :attr:`gate`)."""
        return getattr(_TURN, "queue", None) is self and _TURN.active

    @property
    def fresh(self) -> int:
        """Jobs in a worker that may still bring a batch a generator call (they have not made one yet)."""
        return self._fresh

    def reached_generator(self) -> None:
        """The calling job makes its first generator call (or ends): it no longer counts as :attr:`fresh`."""
        if getattr(_TURN, "fresh", False):
            _TURN.fresh = False
            with self._lock:
                self._fresh -= 1
            self.gate.notify_all()  # a forming batch may stop waiting

    def _take_turn(self, fn: Callable, *args):
        with self._lock:
            self._fresh += 1  # counted while it waits for the gate, so a forming batch waits for it
        _TURN.fresh = True
        with self.gate:
            _TURN.queue, _TURN.active = self, True
            try:
                return fn(*args)
            finally:
                self.reached_generator()
                _TURN.queue, _TURN.active = None, False

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The worker threads, started on first use and again after :meth:`shutdown` (an app's lifespan may restart)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pixtrans-infer")
            return self._pool

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable, *args):
        with self._lock:
            if self._pending >= self.max_pending:
                raise Busy(
                    f"the server is busy: {self._pending} translations are queued or running "
                    f"(limit {self.max_pending}); try again in a moment"
                )
            self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, self._take_turn, fn, *args)
        finally:
            with self._lock:
                self._pending -= 1

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class _Group:
    def __init__(self, inputs: dict):
        self.items = [inputs]
        self.done = False
        self.outputs: list | None = None
        self.error: BaseException | None = None


@contextmanager
def outside_turn():
    """Give up the inference turn (:class:`InferenceQueue`) for light per-request work (preparing inputs, PNG
    encoding) so that it overlaps another job's generator call; a no-op outside a queue job."""
    q = getattr(_TURN, "queue", None)
    if q is None or not _TURN.active:
        yield
        return
    _TURN.active = False
    q.gate.release()
    try:
        yield
    finally:
        q.gate.acquire()
        _TURN.active = True


class BatchingBackend:
    """A runtime backend (:mod:`pixtrans.infer.runtimes`) whose calls from :class:`InferenceQueue` jobs are batched.

    The first call for an input shape opens a batch and gives up its turn while other jobs may still join: until
    ``max_batch`` items, or no other job is on its way to a generator (:attr:`InferenceQueue.fresh`), or nobody
    joined for a window (``window_s``, at least a quarter of the last batch's seconds per item, at most
    ``max_window_s``); then it runs them as one call and hands each its slice. Items are independent (the generator
    module normalises per item), so outputs equal one-by-one runs; a lone request waits for nobody. Calls from
    outside the queue run directly."""

    def __init__(
        self, backend, queue: InferenceQueue, max_batch: int = 8, window_s: float = 0.005, max_window_s: float = 0.25
    ):
        self.backend, self.queue = backend, queue
        self.max_batch, self.window_s, self.max_window_s = max(1, int(max_batch)), float(window_s), float(max_window_s)
        self._open: dict[tuple, _Group] = {}
        self._item_s = 0.0  # seconds per item of the last batch
        self.batches: list[int] = []  # sizes of the batches run (for benchmarks and tests)

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def window(self) -> float:
        """How long a forming batch waits for the next member."""
        return min(self.max_window_s, max(self.window_s, 0.25 * self._item_s))

    def __call__(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        q = self.queue
        if self.max_batch == 1 or not q.in_turn():
            return self.backend(inputs)
        q.reached_generator()
        key = tuple((k, tuple(v.shape[1:]), v.dtype, v.device) for k, v in inputs.items())
        group = self._open.get(key)
        if group is not None:  # join the batch a waiting job opened
            index = len(group.items)
            group.items.append(inputs)
            if len(group.items) >= self.max_batch:
                self._open.pop(key, None)
            q.gate.notify_all()
            q.gate.wait_for(lambda: group.done)
        else:
            group, index = _Group(inputs), 0
            self._open[key] = group
            while len(group.items) < self.max_batch and q.fresh > 0:  # others may bring the same shapes
                n = len(group.items)
                q.gate.wait_for(lambda n=n: len(group.items) > n or q.fresh == 0, timeout=self.window())
                if len(group.items) == n:
                    break  # nobody joined within the window
            if self._open.get(key) is group:
                del self._open[key]
            try:
                names = list(inputs)
                batch = {n: torch.cat([it[n] for it in group.items]) for n in names}
                t0 = time.perf_counter()
                group.outputs = self.backend(batch)
                self._item_s = (time.perf_counter() - t0) / len(group.items)
                self.batches.append(len(group.items))
            except BaseException as err:  # every job of the batch gets the error
                group.error = err
            finally:
                group.done = True
                q.gate.notify_all()
        if group.error is not None:
            raise group.error
        first = next(iter(inputs.values()))
        start = sum(next(iter(it.values())).shape[0] for it in group.items[:index])
        return [o[start : start + first.shape[0]] for o in group.outputs]


# ---------------------------------------------------------------------------- the studio
class Studio:
    """Models + samples + references + pending ratings. Methods named ``*_job`` run on the inference thread."""

    def __init__(
        self,
        models: list[ModelEntry],
        data: str | Path | None = None,
        max_pixels: int = 4096 * 4096,
        max_full_pixels: int = 2048 * 2048,
    ):
        if not models:
            raise ConfigError("pixtrans serve: no checkpoints to serve; give run or checkpoint folders")
        self.models = {m.id: m for m in models}
        self.max_pixels, self.max_full_pixels = max_pixels, max_full_pixels
        self.dataset = self._open_dataset(data) if data else None
        self.data_root = str(data) if data else None
        self.references: OrderedDict[str, np.ndarray] = OrderedDict()
        self.pending: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    # -- dataset
    def _open_dataset(self, root):
        from ..data.datasets import build_dataset

        root = Path(root).expanduser()
        if not root.is_dir():
            raise ConfigError(f"--data {root}: not a folder")
        problems = []
        # label models first, and among them one that reads instance maps (so samples carry them)
        for m in sorted(self.models.values(), key=lambda e: (e.kind != "label", e.data.no_instance)):
            cfg = m.data.model_copy(update={"root": str(root), "max_items": 0, "on_error": "skip"})
            try:
                ds = build_dataset(cfg, cfg.test_split, train=False, require_target=False)
            except PixtransError as err:
                problems.append(f"{m.id}: {err}")
                continue
            if len(ds):
                return ds
            problems.append(f"{m.id}: no test samples found with layout {cfg.layout!r}")
        raise ConfigError(
            f"--data {root}: no loaded model's data layout finds test samples there (" + "; ".join(problems) + ")"
        )

    def dataset_summary(self) -> dict:
        ds = self.dataset
        if ds is None:
            return {"available": False, "count": 0, "kind": None, "label_nc": 0, "has_target": False, "names": []}
        return {
            "available": True,
            "count": len(ds),
            "kind": ds.kind,
            "label_nc": ds.label_nc,
            "has_target": bool(ds.has_target),
            "names": ds.names[:10000],
            "compatible": self.compatible_ids(),
        }

    def compatible(self, m: ModelEntry) -> str | None:
        """Why model ``m`` cannot translate the dataset's samples (None when it can)."""
        ds = self.dataset
        if ds is None:
            return "no dataset: start the server with --data DIR"
        if ds.kind != m.kind:
            return (
                f"{m.id} takes {'label maps' if m.kind == 'label' else 'photos'} but the samples are "
                f"{'label maps' if ds.kind == 'label' else 'photos'}"
            )
        if m.kind == "label" and m.data.label_nc != ds.label_nc:
            return f"{m.id} knows {m.data.label_nc} classes but the samples have {ds.label_nc}"
        return None

    def compatible_ids(self) -> list[str]:
        return [m.id for m in self.models.values() if self.compatible(m) is None]

    def require_dataset(self):
        if self.dataset is None:
            raise ClientError(404, "no samples: the server was started without --data DIR")
        return self.dataset

    def raw_sample(self, index: int) -> tuple[dict[str, np.ndarray], str]:
        ds = self.require_dataset()
        if not 0 <= index < len(ds):
            raise ClientError(404, f"sample {index} does not exist; there are {len(ds)} samples (0..{len(ds) - 1})")
        try:
            maps = ds.load_maps(index)
        except DataError as err:
            raise ClientError(422, f"sample {index}: {err}") from None
        return maps, ds.entries[index].name

    # -- models
    def pick(self, ids: list[str] | None, need: str | None = None) -> list[ModelEntry]:
        """Models by id (all when ``ids`` is empty); unknown ids are a 422 listing the loaded ones."""
        if not ids:
            out = list(self.models.values())
            if need == "samples":
                out = [m for m in out if self.compatible(m) is None]
            return out
        out = []
        for i in ids:
            if i not in self.models:
                raise ClientError(422, f"unknown model {i!r}; loaded: {', '.join(self.models)}")
            out.append(self.models[i])
        return out

    def default_model(self, ids: list[str] | None = None) -> ModelEntry:
        models = self.pick(ids)
        good = [m for m in models if self.compatible(m) is None]
        return (good or models)[0]

    # -- styles
    def clean_style(self, m: ModelEntry, style: Any) -> dict:
        """Check a client style dict against what model ``m`` takes (types, ranges, no file paths)."""
        if style is None or style == {}:
            return {}
        if not isinstance(style, dict):
            raise ClientError(422, f"style for {m.id} must be an object, got {type(style).__name__}")
        allowed = set(m.translator.model.style_schema().keys)
        unknown = set(style) - allowed
        if unknown:
            takes = ", ".join(sorted(allowed)) if allowed else "no style (it is deterministic)"
            raise ClientError(
                422,
                f"style for {m.id} ({m.family}): {', '.join(sorted(unknown))} not supported; this model takes {takes}",
            )
        out: dict[str, Any] = {}
        for key, v in style.items():
            where = f"style for {m.id}: {key}"
            if key in ("seed", "cluster"):
                out[key] = _nonneg_int(v, where)
            elif key in ("clusters", "instances"):
                if not isinstance(v, dict):
                    raise ClientError(422, f'{where} must map ids to cluster numbers, e.g. {{"3": 1}}')
                out[key] = {str(_nonneg_int(k, where)): _nonneg_int(k2, where) for k, k2 in v.items()}
            elif key == "features":
                if not isinstance(v, dict):
                    raise ClientError(422, f"{where} must map class ids to feature vectors")
                feat = {}
                for c, vec in v.items():
                    if not isinstance(vec, list) or not all(isinstance(x, (int, float)) for x in vec):
                        raise ClientError(422, f"{where}: class {c} needs a list of numbers")
                    feat[str(_nonneg_int(c, where))] = [float(x) for x in vec]
                out[key] = feat
            elif key == "reference":
                if v is None:
                    continue
                if not isinstance(v, str) or not REFERENCE.match(v):
                    raise ClientError(
                        422,
                        f"{where} must be 'upload:<id>' (from POST /api/references) or "
                        "'sample:<index>'; file paths are not accepted",
                    )
                out[key] = v
        return out

    def add_reference(self, photo: np.ndarray) -> str:
        """Keep a style photo (at most 1024 px on its long side) for ``{"reference": token}``; the 16 newest stay."""
        h, w = photo.shape[:2]
        if max(h, w) > 1024:
            k = 1024 / max(h, w)
            photo = T.resize_photo(photo, max(1, round(w * k)), max(1, round(h * k)))
        token = "upload:" + hashlib.sha1(photo.tobytes() + str(photo.shape).encode()).hexdigest()[:12]
        with self._lock:
            self.references[token] = photo
            self.references.move_to_end(token)
            while len(self.references) > 16:
                self.references.popitem(last=False)
        return token

    def _reference_maps(self, token: str) -> dict[str, np.ndarray]:
        if token.startswith("upload:"):
            with self._lock:
                photo = self.references.get(token)
            if photo is None:
                raise ClientError(422, f"style reference {token} is no longer on the server; upload the photo again")
            return {"target": photo}
        index = int(token.split(":", 1)[1])
        maps, _ = self.raw_sample(index)
        if "target" not in maps:
            raise ClientError(422, f"style reference {token}: that sample has no photo")
        return maps

    def _resolve_style(self, m: ModelEntry, style: dict, maps: dict[str, np.ndarray]) -> dict:
        """Turn a ``reference`` token into what the family's ``translate`` takes (tensors or feature vectors)."""
        token = style.get("reference")
        if token is None:
            return style
        ref = self._reference_maps(token)
        style = {k: v for k, v in style.items() if k != "reference"}
        if "label" in ref:  # a sample: the photo with its own layout, at the model's resolution
            ref = T.PairedTransform(m.data, train=False)({k: ref[k] for k in ("label", "inst", "target") if k in ref})
        else:  # an uploaded photo: under the input's layout
            ref = {**{k: maps[k] for k in ("label", "inst") if k in maps}, "target": ref["target"]}
        ids = {k: to_tensor_ids(ref[k])[None] for k in ("label", "inst") if k in ref}
        photo = to_tensor_image(ref["target"])[None]
        encoded = m.translator.model.encode_reference(photo, ids.get("label"), ids.get("inst"))
        if "reference" in encoded:  # the family encodes the photo itself at translation time
            return {**style, **encoded, "reference_name": token}
        return {**style, **{k: {**v, **(style.get(k) or {})} for k, v in encoded.items()}}

    # -- translation (inference thread)
    def _batch(self, m: ModelEntry, maps: dict[str, np.ndarray]) -> dict:
        d = m.data
        if m.kind == "label":
            batch = {"input": to_tensor_ids(maps["label"])[None]}
            if not d.no_instance:
                batch["inst"] = to_tensor_ids(maps.get("inst", maps["label"]))[None]
        else:
            src = maps["source"]
            batch = {"input": to_tensor_image(grey(src) if d.input_nc == 1 else src)[None]}
        return m.translator.model.prepare(batch)

    def fit_maps(self, m: ModelEntry, maps: dict[str, np.ndarray], fit: str) -> dict[str, np.ndarray]:
        if fit == "model":
            return T.PairedTransform(m.data, train=False)(maps)
        h, w = next(iter(maps.values())).shape[:2]
        if fit == "full" and w * h > self.max_full_pixels:
            raise ClientError(
                413,
                f"{w}x{h} is too large to translate in one piece (limit "
                f"{self.max_full_pixels / 1e6:.1f} MP); use fit 'tile' or 'model'",
            )
        return maps

    def run_one(self, m: ModelEntry, maps: dict[str, np.ndarray], style: dict, fit: str = "full") -> dict:
        """Translate ``maps`` (``label``/``source`` [+ ``inst``] [+ ``target``]) with one model -> an output dict."""
        # light work outside the inference turn (it overlaps another job's generator call); tiles keep it inside,
        # their inputs are large
        with outside_turn() if fit != "tile" else nullcontext():
            maps = self.fit_maps(m, maps, fit)
            try:
                x = self._batch(m, maps)
            except (ConfigError, DataError) as err:
                raise ClientError(422, f"{m.id}: {err}") from None
        t0 = time.perf_counter()
        try:
            resolved = self._resolve_style(m, style, maps)
            res = m.translator.translate_tensor(x, resolved, m.tile_size() if fit == "tile" else 0)
        except (ConfigError, DataError) as err:
            raise ClientError(422, f"{m.id}: {err}") from None
        seconds = time.perf_counter() - t0
        used = jsonable(res.style or {})
        if style.get("reference"):
            used["reference"] = style["reference"]
        with outside_turn():
            img = to_uint8(res.image)
            image = png_data_url(img)
        out = {
            "model": m.id,
            "ok": True,
            "image": image,
            "width": img.shape[1],
            "height": img.shape[0],
            "style": used,
            "seconds": round(seconds, 4),
            "psnr": None,
            "ssim": None,
            "vif": None,
            "error": None,
        }
        if "target" in maps and maps["target"].shape[:2] == img.shape[:2]:
            tgt = to_tensor_image(maps["target"])[None]
            per = per_image_metrics(res.image.cpu().float()[:, :3], tgt[:, :3])
            out["psnr"], out["ssim"], out["vif"] = (finite(per[k][0]) for k in ("psnr", "ssim", "vif"))
        return out

    def translate_job(
        self, models: list[ModelEntry], per_model_maps: dict[str, dict], styles: dict[str, dict], fit: str
    ) -> list[dict]:
        """Translate with each model in turn; one model's failure is its output's ``error`` and the others' results
        stand. When no model succeeds, the first failure is raised (its 4xx, or 500 when unexpected)."""
        outs, first_err = [], None
        for m in models:
            maps = per_model_maps.get(m.id)
            if isinstance(maps, str):
                outs.append(failed(m.id, maps))
                continue
            try:
                outs.append(self.run_one(m, maps, styles.get(m.id, {}), fit))
            except Exception as err:  # noqa: BLE001 - reported per model; raised below if nothing succeeded
                if is_out_of_memory(err):
                    err = out_of_memory(err, f"translating with {m.id}")
                    log.warning("%s: %s", m.id, err)
                elif not isinstance(err, ClientError):
                    log.exception("translation with %s failed", m.id)
                first_err = first_err or err
                if isinstance(err, ClientError):
                    why = err.message
                elif isinstance(err, OutOfMemory):
                    why = oom_message(err)
                else:
                    why = f"internal error: {type(err).__name__}: {err}"
                outs.append(failed(m.id, why if why.startswith(f"{m.id}: ") else f"{m.id}: {why}"))
        if first_err is not None and not any(o["ok"] for o in outs):
            raise first_err
        return outs

    def display_input(self, m: ModelEntry | None, maps: dict[str, np.ndarray]) -> str:
        if "label" in maps:
            pal = m.palette if m is not None else default_palette(int(maps["label"].max()) + 1)
            return png_data_url(colorize(maps["label"], pal))
        return png_data_url(maps["source"])

    # -- ratings
    def new_rating(self, m: ModelEntry, index: int, name: str, output: dict, target: np.ndarray | None) -> str:
        token = secrets.token_urlsafe(12)
        with self._lock:
            self.pending[token] = {
                "model": m.id,
                "index": index,
                "name": name,
                "output": output,
                "target": target,
                "translation": None,
            }
            while len(self.pending) > 64:
                self.pending.popitem(last=False)
        return token

    def get_rating(self, token: str) -> dict:
        with self._lock:
            r = self.pending.get(token)
        if r is None:
            raise ClientError(404, "unknown or expired rating token; start a new rating")
        return r

    def drop_rating(self, token: str) -> None:
        with self._lock:
            self.pending.pop(token, None)


def failed(model: str, why: str) -> dict:
    return {
        "model": model,
        "ok": False,
        "image": None,
        "width": 0,
        "height": 0,
        "style": None,
        "seconds": 0.0,
        "psnr": None,
        "ssim": None,
        "vif": None,
        "error": why,
    }


def check_budget(models: list[ModelEntry], per_model_maps: dict[str, dict | str], fit: str, limit_mp: float) -> None:
    """Refuse (413) a request that would translate more than ``limit_mp`` megapixels summed over its models (at each
    model's resolution for fit ``model``, else at the input's size), so one request cannot hold the worker long."""
    total = 0.0
    for m in models:
        maps = per_model_maps.get(m.id)
        if not isinstance(maps, dict):
            continue
        h, w = next(iter(maps.values())).shape[:2]
        if fit == "model":
            w, h = m.resolution(w / h)
        total += w * h / 1e6
    if total > limit_mp:
        raise ClientError(
            413,
            f"this request asks for {total:.1f} megapixels x models, over the limit of {limit_mp:g} "
            "(--max-mp-models); choose fewer models, a smaller image or fit 'model'",
        )


def _nonneg_int(v: Any, where: str) -> int:
    if isinstance(v, bool):
        raise ClientError(422, f"{where}: expected a non-negative integer, got {v!r}")
    try:
        i = int(v)
    except (TypeError, ValueError):
        raise ClientError(422, f"{where}: expected a non-negative integer, got {v!r}") from None
    if i < 0 or i >= 2**62 or (isinstance(v, float) and v != i):
        raise ClientError(422, f"{where}: expected a non-negative integer, got {v!r}")
    return i
