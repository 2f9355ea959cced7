"""The training loop shared by every family: G step, D step, schedules, AMP, EMA, logging, checkpoints, resume.

``train(cfg, out)`` runs a whole experiment; ``train(cfg, out, resume=True)`` continues the run in ``out`` exactly
(weights, optimizers, schedulers, EMA, RNG streams and data order). SIGINT/SIGTERM save a checkpoint before exit.
"""

from __future__ import annotations

import csv
import math
import random
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from ..checkpoints import (
    LATEST,
    checkpoint_candidates,
    clean_orphans,
    load_checkpoint_files,
    load_train_state,
    resolve_checkpoint,
    save_checkpoint,
)
from ..config import RESUME_MAY_CHANGE, ExperimentConfig, save_config
from ..data.datasets import SIZE_KEYS, ItemKey, build_dataset, dataset_info
from ..errors import CheckpointError, ConfigError, PixtransError, is_out_of_memory, out_of_memory, writable_folder
from ..families import build_model
from ..families.base import TranslationModel
from . import distributed as dist
from .schedules import is_plateau, make_scheduler
from .speed import adam_options, prepare_model


class TrainingInterrupted(PixtransError):
    """Raised after a checkpoint was saved because of SIGINT/SIGTERM."""


class _Keys(Sampler):
    """This rank's items of one epoch as :class:`ItemKey` (index, epoch, seed), after skipping the first ``skip``.

    Each item's augmentation depends on its key alone, so skipping (resume in the middle of an epoch) and worker
    processes leave every later item as it would have been.
    """

    def __init__(self, sampler: DistributedSampler, epoch: int, seed: int, skip: int):
        self.sampler, self.epoch, self.seed, self.skip = sampler, epoch, seed, skip

    def __iter__(self):
        self.sampler.set_epoch(self.epoch)
        for n, i in enumerate(self.sampler):
            if n >= self.skip:
                yield ItemKey(int(i), self.epoch, self.seed)

    def __len__(self):
        return max(len(self.sampler) - self.skip, 0)


def resolve_device(name: str) -> torch.device:
    """``train.device`` -> a device; ``auto`` and a bare ``cuda`` mean this process's GPU (``LOCAL_RANK``)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", dist.local_rank())
    return dev


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    np_state = np.random.get_state()
    st["numpy"] = [np_state[0], np_state[1].tolist(), *np_state[2:]]
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(tuple(st["python"][:1]) + (tuple(st["python"][1]),) + tuple(st["python"][2:]))
    n = st["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _flat(d: dict, prefix: str = "") -> dict:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _nonfinite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or inf (one device sync for all of them)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return []
    flags = torch.stack([torch.isfinite(tensors[k]).all() for k in names]).cpu().tolist()
    return [k for k, ok in zip(names, flags) if not ok]


def _set_requires_grad(modules, flag: bool) -> list[tuple[torch.nn.Parameter, bool]]:
    saved = []
    for m in modules:
        for p in m.parameters():
            saved.append((p, p.requires_grad))
            p.requires_grad_(flag)
    return saved


class Trainer:
    """Owns the model, optimizers, schedulers and the run folder of one experiment."""

    def __init__(self, cfg: ExperimentConfig, out: str | Path, resume: bool = False):
        self.cfg, self.out = cfg, Path(out)
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.rank, self.world = dist.init_from_env(self.device)
        self.main = self.rank == 0
        self._check_out_dir(resume)
        if resume and self.main:
            for name in clean_orphans(self.out):
                print(f"removed what an interrupted save left: {name}")
        if resume:
            dist.barrier()
            self._resume_source = self._read_resume_state()
        self._seed(cfg.train.seed + self.rank)

        self.dataset = build_dataset(cfg.data, cfg.data.train_split, train=True)
        if len(self.dataset) == 0:
            raise PixtransError(f"data.root={cfg.data.root!r}: no training items found for layout {cfg.data.layout!r}")
        self.info = dataset_info(cfg.data)
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True, seed=cfg.train.seed, drop_last=False
        )
        if len(self.sampler) < cfg.data.batch_size:
            raise ConfigError(
                f"data.batch_size={cfg.data.batch_size} is larger than the {len(self.sampler)} training items per "
                "process; lower the batch size"
            )
        self.steps_per_epoch = max(len(self.sampler) // cfg.data.batch_size, 1)

        self.model: TranslationModel = build_model(cfg).to(self.device)
        if cfg.train.init_from and not resume:
            self._init_from(cfg.train.init_from)
        dist.broadcast_module(self.model)
        self.groups = self.model.optim_groups(cfg.train)
        adam = adam_options(cfg.train, self.device)
        self.opts = {n: torch.optim.Adam(g.params, lr=g.lr, betas=g.betas, **adam) for n, g in self.groups.items()}
        self.scheds = {n: make_scheduler(o, cfg.train, self.steps_per_epoch) for n, o in self.opts.items()}
        self.ema = None
        if cfg.train.ema > 0:
            # parameters are averaged; buffers (BatchNorm statistics, spectral-norm u/v) are copied from the live G
            self.ema = AveragedModel(
                self.model.generators(), multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=False
            )
        prepare_model(self.model, cfg.train, self.device)  # channels_last / compile, after the EMA copy
        amp = cfg.train.amp
        if amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.amp: fp16 needs CUDA; use bf16 on CPU")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self.step = 0
        self.metrics: dict = {}
        if resume:
            self._resume()
        if self.main:  # only now, when the run can start: a failed start leaves no half-made run folder
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.out / "config.yaml")
        # the networks the optimizers train; each gets its own DDP wrapper under torchrun (see _wrapped)
        self._plain = {n: getattr(self.model, n) for n in ("G", "D", "E") if getattr(self.model, n, None) is not None}
        self._ddp: dict[str, torch.nn.Module] = {}
        self._ddp_sig: dict[str, tuple] = {}
        self._stop = False
        self._tb = None

    # ------------------------------------------------------------------ setup
    def _check_out_dir(self, resume: bool) -> None:
        """Refuse an unusable ``--out`` before anything is built; the folder itself is made once the run starts."""
        if self.out.exists() and not self.out.is_dir():
            raise PixtransError(f"--out {self.out}: is a file, not a folder; choose another --out")
        has_run = (self.out / LATEST).is_file() or (resume and checkpoint_candidates(self.out))
        if resume and not has_run:
            raise PixtransError(f"--resume: {self.out} has no checkpoint to resume from (no '{LATEST}' file)")
        if not resume and has_run:
            raise PixtransError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if self.main:  # a real write test (os.access says yes to root on a read-only file system)
            writable_folder(self.out)

    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _init_from(self, path: str) -> None:
        _, src_cfg, weights, _ = load_checkpoint_files(path)
        loaded = self.model.load_init(weights)
        if not loaded:
            raise PixtransError(f"train.init_from={path}: no weights of that checkpoint fit this model")
        if self.main:
            print(f"initialised {len(loaded)} tensors from {path} ({src_cfg.family})")

    def _read_resume_state(self) -> tuple:
        """The newest intact checkpoint of the run (a damaged one is named and skipped), checked against the
        config: keys outside :data:`~pixtrans.config.RESUME_MAY_CHANGE` must be unchanged."""
        for ck in checkpoint_candidates(self.out):
            try:
                ck, old_cfg, weights, meta = load_checkpoint_files(ck)
                state = load_train_state(ck)
                bad = _nonfinite(weights)
            except CheckpointError as err:
                if self.main:
                    print(f"warning: {err}; trying the next-newest checkpoint")
                continue
            if bad:
                if self.main:
                    print(f"warning: {ck} holds non-finite weights ({', '.join(bad[:3])}); trying the next-newest")
                continue
            break
        else:
            raise CheckpointError(f"--resume: {self.out} has no intact checkpoint to resume from (see above)")
        if self.main and ck != checkpoint_candidates(self.out)[0]:
            print(f"resuming from {ck.name}, the newest intact checkpoint")
        # sizes the config leaves to the data were derived from it when the run started: the run's values hold
        derived = {k: getattr(old_cfg.data, k) for k in SIZE_KEYS if k not in self.cfg.data.model_fields_set}
        if derived:
            self.cfg.data = self.cfg.data.model_copy(update=derived)
        old, new = _flat(old_cfg.to_dict()), _flat(self.cfg.to_dict())
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        refused = [k for k in changed if k not in RESUME_MAY_CHANGE]
        if refused:
            diffs = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in refused[:6])
            raise ConfigError(
                f"--resume: {diffs} differ from {ck / 'config.yaml'}; these cannot change when resuming (the "
                "restored optimizer, schedule and data order were made with the old values): drop those changes, or "
                f"start a new run from its weights with --set train.init_from={ck} (docs/CONFIG.md lists the keys "
                "that may change)"
            )
        if self.main:
            for k in changed:
                print(f"resume: {k} changed {old.get(k)!r} -> {new.get(k)!r} (used from now on)")
        return ck, old_cfg, weights, meta, state

    def _resume(self) -> None:
        ck, _, weights, meta, st = self._resume_source
        del self._resume_source
        self.model.load_checkpoint_state({k: v for k, v in weights.items() if not k.startswith("ema.")})
        if self.ema is not None:
            ema_w = {k[4:]: v for k, v in weights.items() if k.startswith("ema.")}
            self.ema.module.load_state_dict(ema_w)
        self.model.load_meta(meta.get("family_meta", {}))
        for n, o in self.opts.items():
            o.load_state_dict(st["optimizers"][n])
        for n, s in self.scheds.items():
            s.load_state_dict(st["schedulers"][n])
        if "scaler" in st:
            self.scaler.load_state_dict(st["scaler"])
        if self.ema is not None and "ema_n" in st:
            self.ema.n_averaged.fill_(int(st["ema_n"]))
        rng = st["rng"][self.rank] if self.rank < len(st["rng"]) else st["rng"][0]
        _set_rng_state(rng)
        self.step = int(st["step"])
        self.metrics = meta.get("metrics", {})
        if self.main:
            print(f"resuming {self.out} at step {self.step}")

    # ------------------------------------------------------------------ checkpoints
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """Every weight and buffer a checkpoint holds (BatchNorm statistics and spectral-norm u/v included)."""
        weights = self.model.checkpoint_state()
        if self.ema is not None:
            weights.update({f"ema.{k}": v for k, v in self.ema.module.state_dict().items()})
        return weights

    def _last_good(self) -> str:
        """What to do after divergence, naming the last good checkpoint when there is one."""
        fixes = "a lower train.lr, train.amp=off or train.grad_clip > 0"
        try:
            ck = resolve_checkpoint(self.out)
        except CheckpointError:
            return f"no checkpoint was saved before this; start again with {fixes}"
        return f"the last good checkpoint is {ck}: start a new run from it with --set train.init_from={ck} and {fixes}"

    def _check_state(self) -> None:
        """The divergence guard over weights and buffers: non-finite state stops training and is never saved."""
        bad = _nonfinite(self._state_tensors())
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise PixtransError(
                f"step {self.step}: training diverged: non-finite values in {', '.join(bad[:3])}{more} (not saved); "
                f"{self._last_good()}"
            )

    def save(self) -> Path | None:
        self._check_state()  # on every rank (their state is the same), before any of them waits on another
        rngs = [_rng_state()]
        if dist.is_distributed():
            gathered: list = [None] * self.world
            torch.distributed.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if not self.main:
            dist.barrier()
            return None
        weights = self._state_tensors()
        state = {
            "step": self.step,
            "optimizers": {n: o.state_dict() for n, o in self.opts.items()},
            "schedulers": {n: s.state_dict() for n, s in self.scheds.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rngs,
            "ema_n": int(self.ema.n_averaged.item()) if self.ema is not None else 0,
        }
        meta = {
            "metrics": self.metrics,
            "ema": self.ema is not None,
            "class_names": self.info.get("class_names"),
            "palette": self.info.get("palette"),
            "things": self.info.get("things"),
            "label_nc": self.cfg.data.label_nc,
            "family_meta": self.model.meta(),
            "params_G": sum(p.numel() for p in self.model.G.parameters()),
        }
        ck = save_checkpoint(self.out, self.step, self.cfg, weights, meta, state, keep=self.cfg.train.keep_checkpoints)
        dist.barrier()
        return ck

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        sampler = _Keys(self.sampler, epoch, self.cfg.train.seed, skip_batches * self.cfg.data.batch_size)
        # items draw from their own (seed, epoch, index) stream; the loader's generator only keeps worker seeding
        # off the global RNG, whose state the checkpoint carries
        gen = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch * 7919 + self.rank)
        return DataLoader(
            self.dataset,
            batch_size=self.cfg.data.batch_size,
            sampler=sampler,
            num_workers=self.cfg.data.num_workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=gen,
        )

    def _batches(self):
        epoch, skip = divmod(self.step, self.steps_per_epoch)
        while True:
            n = 0
            for batch in self._loader(epoch, skip):
                self.dataset.record_skipped(batch.pop("skipped", []))  # skips made inside worker processes
                yield epoch, batch
                n += 1
            if n == 0 and skip == 0:
                raise PixtransError(
                    f"data.batch_size={self.cfg.data.batch_size} is larger than the {len(self.sampler)} items per "
                    "process; lower the batch size"
                )
            epoch, skip = epoch + 1, 0

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _optimize(self, loss: torch.Tensor, names: list[str]) -> None:
        self._backward(loss, names)
        self._step(names)

    def _backward(self, loss: torch.Tensor, names: list[str], only_these: bool = False, keep_graph: bool = False):
        """Fresh gradients of ``loss`` for the optimizers ``names`` (``only_these``: for their parameters alone)."""
        for n in names:
            self.opts[n].zero_grad(set_to_none=True)
        inputs = [p for n in names for p in self.groups[n].params if p.requires_grad] if only_these else None
        # under torchrun the DDP wrappers average gradients during backward
        self.scaler.scale(loss).backward(inputs=inputs, retain_graph=keep_graph)

    def _step(self, names: list[str], update_scale: bool = True) -> None:
        params = [p for n in names for p in self.groups[n].params]
        if self.cfg.train.grad_clip > 0:
            for n in names:
                self.scaler.unscale_(self.opts[n])
            torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
        for n in names:
            self.scaler.step(self.opts[n])
        if update_scale:
            self.scaler.update()

    def train_step(self, batch: dict, epoch: int) -> dict[str, float]:
        m = self.model
        m.train()
        m.on_step(self.step, epoch)
        x = m.prepare(batch)
        g_names = [n for n in self.opts if n not in m.d_optimizers]
        d_names = [n for n in self.opts if n in m.d_optimizers]
        share = self._shares_d_pass(d_names)
        # one D pass: every network runs through its DDP wrapper; separate passes: D only for its own step
        with self._wrapped(("G", "E", "D") if share else ("G", "E")):
            with self._autocast():
                fakes = m.generate(x)
                pair = m.gd_losses(x, fakes) if share else None
            if share:
                lg, ld = pair
                self._shared_pass_step(lg, ld, g_names, d_names)
            else:
                lg, ld = self._separate_passes_step(x, fakes, g_names, d_names)
        # BatchNorm statistics / spectral-norm vectors: rank 0's, as DDP's broadcast_buffers, once per step
        dist.broadcast_buffers(list(self._plain.values()))
        for s in self.scheds.values():
            if not is_plateau(s):
                s.step()
        if self.ema is not None:
            self.ema.update_parameters(m.generators())
            for b_ema, b in zip(self.ema.module.buffers(), m.generators().buffers()):
                b_ema.copy_(b)
        self._last = (x, fakes)
        return {k: float(v.detach()) for k, v in {**lg, **ld}.items()}

    def _separate_passes_step(self, x: dict, fakes: list, g_names: list[str], d_names: list[str]) -> tuple[dict, dict]:
        """G's and D's steps, each with its own discriminator pass, in ``train.update_order``."""
        m = self.model
        ld = self._d_step(x, fakes, d_names) if self.cfg.train.update_order == "d_first" else {}
        # generator step: G (and E) run through their DDP wrappers; D runs as the plain module with requires_grad
        # off, so the loss reaches G through D while D gets no gradient and its wrapper no reduction to wait for
        saved = _set_requires_grad(m.discriminators(), False)
        with self._autocast():
            lg = m.g_losses(x, fakes)
        loss_g = sum(lg.values())
        self._check_finite(loss_g, lg)
        self._optimize(loss_g, g_names)
        for p, flag in saved:
            p.requires_grad_(flag)
        if self.cfg.train.update_order == "g_first":
            ld = self._d_step(x, fakes, d_names)
        return lg, ld

    def _shares_d_pass(self, d_names: list[str]) -> bool:
        t = self.cfg.train
        return t.shared_d_pass and t.update_order == "g_first" and self.model.shares_d_pass and bool(d_names)

    def _shared_pass_step(self, lg: dict, ld: dict, g_names: list[str], d_names: list[str]) -> None:
        """g_first from one discriminator pass: D's loss back to D only, then G's loss to G (and E) only (``inputs=``
        of backward: autograd computes no gradient nobody asked for), then both optimizer steps. D's backward keeps
        the fake pass for G's; the real pass is released before G's backward (``ld`` is detached in place)."""
        loss_g, loss_d = sum(lg.values()), sum(ld.values())
        self._check_finite(loss_g, lg)
        self._check_finite(loss_d, ld)
        self._backward(loss_d, d_names, only_these=True, keep_graph=True)
        del loss_d
        for k in ld:
            ld[k] = ld[k].detach()
        self._backward(loss_g, g_names, only_these=True)
        self._step(g_names, update_scale=False)  # both losses were scaled with the same (fp16) scale
        self._step(d_names)

    def _d_step(self, x: dict, fakes: list[torch.Tensor], d_names: list[str]) -> dict[str, torch.Tensor]:
        """The discriminators' losses on the detached fakes and their optimizer step."""
        if not d_names:
            return {}
        with self._wrapped(("D",)), self._autocast():
            ld = self.model.d_losses(x, [f.detach() for f in fakes])
        loss_d = sum(ld.values())
        self._check_finite(loss_d, ld)
        self._optimize(loss_d, d_names)
        return ld

    @contextmanager
    def _wrapped(self, names: tuple[str, ...]):
        """Inside the block ``model.<name>`` is that network's DDP wrapper (one process: unchanged).

        A wrapper covers the parameters trainable when it is built; when that set changes (pix2pixHD's
        ``niter_fix_global`` unfreezing the global generator) it is rebuilt. The plain networks are back in place
        after the block, so checkpoints, EMA, sampling and validation never see ``module.`` names.
        """
        names = tuple(n for n in names if n in self._plain)
        if self.world == 1 or not names:
            yield
            return
        for n in names:
            sig = dist.trainable_signature(self._plain[n])
            if self._ddp_sig.get(n) != sig:
                self._ddp[n], self._ddp_sig[n] = dist.wrap(self._plain[n], self.device), sig
            setattr(self.model, n, self._ddp[n])
        try:
            yield
        finally:
            for n in names:
                setattr(self.model, n, self._plain[n])

    @contextmanager
    def _ema_weights(self):
        """The model with the EMA generator's weights in place of the live ones, as ``pixtrans.load`` builds it."""
        if self.ema is None:
            yield
            return
        gen = self.model.generators()
        live = {k: v.clone() for k, v in gen.state_dict().items()}
        gen.load_state_dict(self.ema.module.state_dict())
        try:
            yield
        finally:
            gen.load_state_dict(live)

    def _check_finite(self, total: torch.Tensor, parts: dict) -> None:
        if not torch.isfinite(total):
            bad = [k for k, v in parts.items() if not torch.isfinite(v)]
            raise PixtransError(f"step {self.step}: loss became non-finite ({', '.join(bad)}); {self._last_good()}")

    def _on_signal(self, signum, frame) -> None:
        self._stop = True

    def fit(self, callback: Callable[[Trainer], bool | None] | None = None) -> Path:
        """Train until ``train.steps``; returns the final checkpoint folder. ``callback(trainer)`` runs after every
        step; returning True ends training there (logged and saved as at the last step)."""
        t = self.cfg.train
        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(ValueError):  # not in the main thread: no handlers
                handlers[sig] = signal.signal(sig, self._on_signal)
        log = _CsvLog(self.out / "log.csv", self.step) if self.main else None
        bar = tqdm(total=t.steps, initial=self.step, disable=not (self.main and t.progress), dynamic_ncols=True)
        acc: dict[str, list[float]] = {}
        t0, n_img = time.perf_counter(), 0
        try:
            batches = self._batches()
            while self.step < t.steps:
                epoch, batch = next(batches)
                losses = self.train_step(batch, epoch)
                self.step += 1
                n_img += batch["input"].shape[0] * self.world
                for k, v in losses.items():
                    acc.setdefault(k, []).append(v)
                stop = callback is not None and dist.any_rank(bool(callback(self)))
                if self.step % max(t.log_every, 1) == 0 or self.step == t.steps or stop:
                    self._check_state()
                    dt = time.perf_counter() - t0
                    row = dist.mean_over_ranks({k: sum(v) / len(v) for k, v in acc.items()})  # the global batch's
                    ips = n_img / dt if dt > 0 else 0.0
                    if self.main:
                        lrs = {f"lr_{n}": o.param_groups[0]["lr"] for n, o in self.opts.items()}
                        log.write({"step": self.step, "epoch": epoch, "images_per_s": round(ips, 3), **lrs, **row})
                        bar.set_postfix({**{k: f"{v:.3f}" for k, v in row.items()}, "img/s": f"{ips:.1f}"})
                        self._tensorboard(row, ips)
                    acc, t0, n_img = {}, time.perf_counter(), 0
                if self.main and t.sample_every and self.step % t.sample_every == 0:
                    self._sample()
                if t.val_every and self.step % t.val_every == 0:
                    self._validate()
                if t.save_every and self.step % t.save_every == 0 and self.step < t.steps and not stop:
                    self.save()
                bar.update(1)
                if stop:
                    break
                if dist.any_rank(self._stop):
                    self.save()
                    raise TrainingInterrupted(f"interrupted at step {self.step}; saved. Continue with --resume")
            if self.main and t.sample_every:
                self._sample()
            ck = self.save()
            self._report_skipped()
            if self.main:
                from ..eval.plots import plot_losses

                plot_losses(self.out / "log.csv", self.out / "losses.png")
            return ck if ck is not None else resolve_checkpoint(self.out)
        except (MemoryError, RuntimeError, OSError) as err:  # nothing of this step is saved
            if not is_out_of_memory(err):
                raise
            raise out_of_memory(err, self._oom_doing(), self._oom_hint()) from err
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
            if self._tb is not None:
                self._tb.close()

    def _oom_doing(self) -> str:
        d = self.cfg.data
        return f"at training step {self.step + 1} on {self.device} (data.batch_size={d.batch_size}, crop {d.crop_size})"

    def _oom_hint(self) -> str:
        """What to lower, and that nothing was saved: the last checkpoint (if any) is the last good state."""
        try:
            kept = f"the last checkpoint {resolve_checkpoint(self.out)} is intact"
        except CheckpointError:
            kept = "no checkpoint had been saved yet"
        return (
            f"lower data.batch_size or data.crop_size, or set train.amp=bf16 (fp16 on CUDA); nothing was saved, {kept}"
        )

    # ------------------------------------------------------------------ outputs
    def _report_skipped(self) -> None:
        """Rank 0 names the bad files every rank skipped (``data.on_error: skip``), worker processes included."""
        paths = [p.path for p in self.dataset.problems]
        if dist.is_distributed():
            gathered: list = [None] * self.world
            torch.distributed.all_gather_object(gathered, paths)
            paths = [p for ps in gathered for p in ps]
        paths = sorted(set(paths))
        if self.main and paths:
            more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
            print(f"data.on_error=skip: skipped {len(paths)} bad file(s): {', '.join(paths[:5])}{more}")

    def _tensorboard(self, row: dict, ips: float) -> None:
        if not self.cfg.train.tensorboard:
            return
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard: install it with `pip install tensorboard`") from None
            self._tb = SummaryWriter(str(self.out / "tb"))
        for k, v in row.items():
            self._tb.add_scalar(f"loss/{k}", v, self.step)
        self._tb.add_scalar("images_per_s", ips, self.step)

    def _sample(self) -> None:
        from ..eval.report import make_grid
        from ..infer.translator import input_to_rgb

        x, fakes = self._last
        n = min(4, x["input"].shape[0])
        rows = []
        for i in range(n):
            row = [input_to_rgb(x, i, self.cfg.data, self.info.get("palette")), fakes[-1][i].detach().float()]
            if "target" in x:
                row.append(x["target"][i])
            rows.append(row)
        (self.out / "samples").mkdir(exist_ok=True)
        make_grid(rows).save(self.out / "samples" / f"step_{self.step:07d}.png")

    @torch.no_grad()
    def _validate(self) -> None:
        """Score on rank 0 the generator ``pixtrans.load`` gives (the EMA copy when EMA is on) through the
        translator (padding to the network's multiple); every rank steps the plateau schedule on that PSNR."""
        psnr = math.nan
        if self.main:
            from ..eval.evaluate import evaluate_model

            with self._ema_weights():
                res = evaluate_model(self.model, self.cfg, max_items=self.cfg.train.val_items)
            self.metrics = {**res, "step": self.step}
            psnr = res.get("psnr")
            psnr = math.nan if psnr is None else float(psnr)
            with open(self.out / "val.csv", "a", newline="") as f:
                csv.writer(f).writerow([self.step, res.get("psnr"), res.get("ssim"), res.get("vif")])
        psnr = dist.broadcast_float(psnr)
        for s in self.scheds.values():
            if is_plateau(s) and not math.isnan(psnr):
                s.step(psnr)


class _CsvLog:
    """Appends rows to the run's CSV log; on resume drops rows written after the resumed step."""

    def __init__(self, path: Path, step: int):
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file():
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            if rows:
                self.fields = list(rows[0].keys())
                rows = [r for r in rows if int(r["step"]) <= step]
                with open(path, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)

    def write(self, row: dict) -> None:
        if self.fields is None:
            self.fields = list(row.keys())
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writeheader()
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore").writerow(row)


def train(cfg: ExperimentConfig, out: str | Path, resume: bool = False) -> Path:
    """Run (or resume) an experiment into ``out``; returns the final checkpoint folder."""
    trainer = Trainer(cfg, out, resume=resume)
    try:
        return trainer.fit()
    finally:
        dist.shutdown()
