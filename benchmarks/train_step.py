"""Speed of one training step: per family, against the official pix2pix recipe, and per speed option.

Every measurement drives the real :class:`pixtrans.train.trainer.Trainer` (its ``train_step`` on one fixed batch
of synthetic data) and reports the median wall time per step, images/s and **CPU seconds per step** (user + system
of this process). On a machine shared with other jobs wall time drifts with their load; CPU time barely does, and
variants compared in one table always run interleaved in one process (A B A B ...).

    # pix2pix (unet_256 + basic D, batch 1, GAN + L1, fp32) against a minimal loop in the official update order
    python benchmarks/train_step.py official --size 256 --rounds 6
    # images/s of every family's synthetic config at 256x256 and 512x256
    python benchmarks/train_step.py families --sizes 256x256 512x256 --rounds 2
    # one option at a time against the defaults (fused_adam, channels_last, amp=bf16, compile)
    python benchmarks/train_step.py options --size 128 --rounds 4 --variants base no_fused channels_last bf16
    # the official loop as users run it (plain process: glibc malloc and OpenMP defaults) against pixtrans as the CLI
    # runs it (its process settings), alternating child processes
    python benchmarks/train_step.py shipped --size 256 --runs 3 --steps 4
    # the shared D pass under DistributedDataParallel: 2 processes (gloo), 1 thread each
    torchrun --standalone --nproc-per-node 2 benchmarks/train_step.py ddp --size 256 --threads 1 \
        --variants base separate_d_passes --rounds 4
    # glibc malloc thresholds (pixtrans.runtime_env) on vs off: alternating child processes
    python benchmarks/train_step.py malloc --size 256 --runs 3 --preload /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
        --preload /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

``official`` checks first that both loops give the same losses at step 1 (same weights, same batch, same dropout
masks) and prints them. pixtrans steps G before D (the order of the official pix2pixHD and SPADE code), the official
pix2pix code steps D first, so ``G_GAN`` at step 1 is computed with D before (pixtrans) or after (official) D's first
update; ``D_real``, ``D_fake`` and ``G_L1`` are the same computation and must agree.
"""

# ruff: noqa: E402 (the OpenMP setting must come before torch is imported, and only in some processes)
from __future__ import annotations

import argparse
import copy
import json
import os

AS_SHIPPED = os.environ.get("PIXTRANS_BENCH_AS_SHIPPED") == "1"  # a child timing the official loop as users run it
if not AS_SHIPPED:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP, as the CLI does
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pixtrans.config import load_config
from pixtrans.data.synth import generate
from pixtrans.layers.gemm_conv import plain_convs
from pixtrans.train.trainer import Trainer

FAMILY_CONFIGS = {f: f"configs/{f}_synth.yaml" for f in ("pix2pix", "pix2pixhd", "spade", "msg_unet")}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def synth_data(root: Path, width: int, height: int, aligned: bool = False) -> Path:
    """Two synthetic scenes of exactly width x height (made once per size under ``root``)."""
    out = root / f"synth_{width}x{height}"
    if not out.is_dir():
        generate(out, n=2, n_test=1, size=(width, height), seed=0, aligned=aligned)
    return out


def make_trainer(family: str, width: int, height: int, tmp: Path, sets: list[str], tag: str) -> Trainer:
    """A Trainer for ``family``'s synthetic config at width x height (crops of exactly that size)."""
    root = synth_data(tmp, width, height, aligned=True)
    base = [
        f"data.root={root}",
        "data.preprocess=none",
        "data.flip=false",
        f"data.crop_size={width}",
        f"data.load_size={width}",
        "train.progress=false",
        "train.sample_every=0",
        "train.save_every=0",
    ]
    if family == "spade" and width != height:
        base.append(f"model.aspect_ratio={width / height}")
    if family == "pix2pix":
        # unet_256 needs sides that are multiples of 2**8
        base.append("model.num_downs=8" if min(width, height) >= 256 else "model.num_downs=7")
    cfg = load_config(FAMILY_CONFIGS[family], [*base, *sets])
    return Trainer(cfg, tmp / f"run_{family}_{width}x{height}_{tag}")


def official_recipe_trainer(size: int, tmp: Path, sets: list[str], tag: str) -> Trainer:
    """pix2pix as the official recipe trains facades: unet_256 + basic D, 3 -> 3 channels, batch 1, GAN + 100 L1."""
    root = synth_data(tmp, size, size, aligned=True) / "aligned"
    sets = [
        f"data.root={root}",
        "data.layout=aligned",
        "data.label_nc=0",
        "data.preprocess=none",
        "data.flip=false",
        f"data.crop_size={size}",
        f"data.load_size={size}",
        "model.num_downs=8" if size >= 256 else "model.num_downs=7",
        "model.ngf=64",
        "model.ndf=64",
        "train.progress=false",
        "train.sample_every=0",
        "train.save_every=0",
        "train.lr_policy=constant",
        *sets,
    ]
    return Trainer(load_config(FAMILY_CONFIGS["pix2pix"], sets), tmp / f"run_official_{size}_{tag}")


def first_batch(trainer: Trainer) -> dict:
    _, batch = next(trainer._batches())
    return batch


class OfficialLoop:
    """pix2pix's official update order on copies of a model's G and D: forward G; D step on the detached fake and
    the real pair; G step on GAN + lambda * L1 with D frozen. Plain ``torch.optim.Adam`` as the official code."""

    def __init__(self, model, lr: float = 2e-4, lambda_l1: float = 100.0):
        self.G, self.D = copy.deepcopy(model.G).train(), copy.deepcopy(model.D).train()
        plain_convs(self.G), plain_convs(self.D)  # the official layers: PyTorch's own kernels
        self.gan, self.lambda_l1 = model.gan, lambda_l1
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.5, 0.999))

    def step(self, x: dict) -> dict[str, float]:
        real_A, real_B = x["input"], x["target"]
        fake_B = self.G(real_A)
        self.D.requires_grad_(True)
        self.opt_D.zero_grad()
        loss_D_fake = self.gan(self.D(torch.cat([real_A, fake_B.detach()], 1)), False)
        loss_D_real = self.gan(self.D(torch.cat([real_A, real_B], 1)), True)
        ((loss_D_fake + loss_D_real) * 0.5).backward()
        self.opt_D.step()
        self.D.requires_grad_(False)
        self.opt_G.zero_grad()
        loss_G_GAN = self.gan(self.D(torch.cat([real_A, fake_B], 1)), True)
        loss_G_L1 = F.l1_loss(fake_B, real_B) * self.lambda_l1
        (loss_G_GAN + loss_G_L1).backward()
        self.opt_G.step()
        losses = {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, "D_real": loss_D_real * 0.5, "D_fake": loss_D_fake * 0.5}
        return {k: float(v.detach()) for k, v in losses.items()}


def interleaved(fns: dict, rounds: int, warmup: int = 1) -> dict[str, dict]:
    """Run each callable once per round in turn (A B A B ...); median wall and CPU seconds per call."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(cpu_seconds() - c0)
    return {k: {"wall_s": statistics.median(wall[k]), "cpu_s": statistics.median(cpu[k])} for k in fns}


# ------------------------------------------------------------------------------------------------ modes
def run_official(a, tmp: Path) -> dict:
    trainer = official_recipe_trainer(a.size, tmp, a.set, "ours")
    official = OfficialLoop(trainer.model)
    batch = first_batch(trainer)
    x = trainer.model.prepare(batch)
    # step 1 from the same weights, batch and dropout masks
    torch.manual_seed(123)
    ours1 = trainer.train_step(batch, 0)
    torch.manual_seed(123)
    off1 = official.step(x)
    fns = {"pixtrans": lambda: trainer.train_step(batch, 0), "official": lambda: official.step(x)}
    times = interleaved(fns, a.rounds)
    res = {
        "size": a.size,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "step1_losses": {"pixtrans": ours1, "official": off1},
        **times,
        "speedup_wall": times["official"]["wall_s"] / times["pixtrans"]["wall_s"],
        "speedup_cpu": times["official"]["cpu_s"] / times["pixtrans"]["cpu_s"],
    }
    print("| loop | s/step (wall) | CPU s/step | images/s |\n|---|---|---|---|")
    for k in ("official", "pixtrans"):
        print(f"| {k} | {times[k]['wall_s']:.3f} | {times[k]['cpu_s']:.3f} | {1 / times[k]['wall_s']:.2f} |")
    print(f"speed-up: {res['speedup_wall']:.2f}x wall, {res['speedup_cpu']:.2f}x CPU time")
    print("step-1 losses:", json.dumps(res["step1_losses"]))
    if a.profile:
        prof = profile(fns)
        res["profile"] = prof
        # the official step over pixtrans's convolutions alone (both profiled): the speed-up if everything else took
        # no time
        res["ceiling"] = prof["official"]["ops_s"] / prof["pixtrans"]["conv_s"]
        print(f"official step / pixtrans's time in convolutions: {res['ceiling']:.2f}x (the most these kernels allow)")
    return res


def run_families(a, tmp: Path) -> dict:
    rows = []
    for size in a.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        for fam in a.families:
            tr = make_trainer(fam, w, h, tmp, a.set, "fam")
            batch = first_batch(tr)
            t = interleaved({fam: lambda tr=tr, batch=batch: tr.train_step(batch, 0)}, a.rounds)[fam]
            m = tr.model
            row = {
                "family": fam,
                "size": size,
                "ngf": getattr(m.cfg, "ngf", None),
                "params_G": sum(p.numel() for p in m.G.parameters()),
                "wall_s": t["wall_s"],
                "cpu_s": t["cpu_s"],
                "images_per_s": tr.cfg.data.batch_size / t["wall_s"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            del tr, batch
    print("\n| family | size | ngf | params G | s/step (wall) | CPU s/step | images/s |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['family']} | {r['size']} | {r['ngf']} | {r['params_G'] / 1e6:.1f} M | {r['wall_s']:.2f} | "
            f"{r['cpu_s']:.2f} | {r['images_per_s']:.2f} |"
        )
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}


VARIANTS = {
    "base": [],
    "no_fused": ["train.fused_adam=false"],
    "channels_last": ["train.channels_last=true"],
    "no_gemm_convs": ["train.gemm_small_convs=false"],
    "separate_d_passes": ["train.shared_d_pass=false"],
    "bf16": ["train.amp=bf16"],
    "compile": ["train.compile=true"],
}


def run_options(a, tmp: Path) -> dict:
    fns, trainers = {}, {}
    for v in a.variants:
        if a.family == "official":
            tr = official_recipe_trainer(a.size, tmp, [*a.set, *VARIANTS[v]], v)
        else:
            tr = make_trainer(a.family, a.size, a.size, tmp, [*a.set, *VARIANTS[v]], v)
        batch = first_batch(tr)
        trainers[v] = tr
        fns[v] = lambda tr=tr, batch=batch: tr.train_step(batch, 0)
    t0 = time.perf_counter()
    times = interleaved(fns, a.rounds, warmup=2)  # compile: the first calls compile
    base = times[a.variants[0]]
    print(f"\n{a.family} {a.size}px, interleaved, {a.rounds} rounds ({time.perf_counter() - t0:.0f} s)")
    print(f"| variant | s/step (wall) | CPU s/step | CPU time vs {a.variants[0]} |\n|---|---|---|---|")
    for v, t in times.items():
        print(f"| {v} | {t['wall_s']:.3f} | {t['cpu_s']:.3f} | {t['cpu_s'] / base['cpu_s']:.2f}x |")
    return {"family": a.family, "size": a.size, **times}


def run_ddp(a, tmp: Path) -> dict:
    """Under torchrun (gloo on CPU): the official recipe's step per variant, interleaved, every rank in step; rank 0
    prints wall and CPU seconds per step (each rank's batch is ``data.batch_size``, 1 here)."""
    fns = {}
    for v in a.variants:
        tr = official_recipe_trainer(a.size, tmp, [*a.set, *VARIANTS[v]], v)
        batch = first_batch(tr)
        fns[v] = lambda tr=tr, batch=batch: tr.train_step(batch, 0)
    times = interleaved(fns, a.rounds)
    base = times[a.variants[0]]
    if int(os.environ.get("RANK", "0")) == 0:
        world = os.environ.get("WORLD_SIZE", "1")
        print(f"\nofficial recipe {a.size}px, {world} processes x {torch.get_num_threads()} threads, {a.rounds} rounds")
        print(f"| variant | s/step (wall) | CPU s/step (rank 0) | CPU time vs {a.variants[0]} |\n|---|---|---|---|")
        for v, t in times.items():
            print(f"| {v} | {t['wall_s']:.3f} | {t['cpu_s']:.3f} | {t['cpu_s'] / base['cpu_s']:.2f}x |")
    return times


def run_steps(a, tmp: Path) -> dict:
    """One variant in this process (child of ``malloc`` and ``shipped``): wall, CPU user/system seconds and minor
    faults per step of pixtrans's ``train_step`` or (``--loop official``) the official update order."""
    tr = official_recipe_trainer(a.size, tmp, a.set, "steps")
    batch = first_batch(tr)
    if a.loop == "official":
        loop, x = OfficialLoop(tr.model), tr.model.prepare(batch)
        step = lambda: loop.step(x)  # noqa: E731
    else:
        step = lambda: tr.train_step(batch, 0)  # noqa: E731
    step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(a.steps):
        step()
    r1, n = resource.getrusage(resource.RUSAGE_SELF), a.steps
    res = {
        "wall_s": (time.perf_counter() - t0) / n,
        "user_s": (r1.ru_utime - r0.ru_utime) / n,
        "sys_s": (r1.ru_stime - r0.ru_stime) / n,
        "minor_faults": (r1.ru_minflt - r0.ru_minflt) / n,
    }
    print(json.dumps(res))
    return res


def _children(a, variants: dict[str, tuple[dict, list[str]]]) -> dict[str, list[dict]]:
    """Run ``steps`` in a child process per variant (env changes, extra args), alternating, ``--runs`` times."""
    results: dict[str, list[dict]] = {k: [] for k in variants}
    cmd = [sys.executable, __file__, "steps", "--size", str(a.size), "--steps", str(a.steps)]
    cmd += [f"--set={s}" for s in a.set] + ([f"--threads={a.threads}"] if a.threads else [])
    for _ in range(a.runs):
        for name, (env_change, extra) in variants.items():
            env = {k: v for k, v in os.environ.items() if k not in ("PIXTRANS_MALLOC", "PIXTRANS_BENCH_AS_SHIPPED")}
            env.update(env_change)
            out = subprocess.run(cmd + extra, env=env, capture_output=True, text=True, check=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
    return results


def _step_table(results: dict[str, list[dict]]) -> dict[str, dict]:
    print("| variant | s/step (wall) | user s/step | system s/step | minor faults/step |\n|---|---|---|---|---|")
    summary = {}
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        summary[name] = med
        cells = [f"{med[k]:.3f}" for k in ("wall_s", "user_s", "sys_s")] + [f"{med['minor_faults']:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return summary


def run_shipped(a, tmp: Path) -> dict:
    """The official update order in a plain process (glibc malloc and OpenMP defaults, plain Adam: how the official
    train.py runs) against pixtrans's train_step with the CLI's process settings; alternating child processes.
    ``official`` checks in one process that both compute the same losses at step 1."""
    plain = {"PIXTRANS_BENCH_AS_SHIPPED": "1", "PIXTRANS_MALLOC": "default"}
    variants = {"official loop, as shipped": (plain, ["--loop", "official"]), "pixtrans (CLI)": ({}, [])}
    summary = _step_table(_children(a, variants))
    off, ours = summary["official loop, as shipped"], summary["pixtrans (CLI)"]
    cpu = lambda r: r["user_s"] + r["sys_s"]  # noqa: E731
    summary["speedup_wall"] = off["wall_s"] / ours["wall_s"]
    summary["speedup_cpu"] = cpu(off) / cpu(ours)
    print(f"speed-up: {summary['speedup_wall']:.2f}x wall, {summary['speedup_cpu']:.2f}x CPU time")
    return summary


def run_malloc(a, tmp: Path) -> dict:
    """Alternate child processes with pixtrans's malloc thresholds on and off (they are process-wide), and with each
    ``--preload`` allocator (jemalloc, tcmalloc: where installed) in LD_PRELOAD."""
    variants = {"tuned": ({}, []), "glibc default": ({"PIXTRANS_MALLOC": "default"}, [])}
    for lib in a.preload:
        variants[f"{Path(lib).name} (LD_PRELOAD)"] = ({"LD_PRELOAD": lib}, [])
    return _step_table(_children(a, variants))


CONV_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::mm", "aten::addmm", "aten::im2col")
CONV_OPS += ("aten::col2im", "aten::_convolution", "aten::bmm")


def profile(fns: dict, rounds: int = 3) -> dict[str, dict]:
    """torch.profiler table (self CPU time) of one call of each, and the time inside convolutions (oneDNN kernels,
    and the matrix multiplies / unfold / fold of ``gemm_small_convs``): the median of ``rounds`` profiled calls."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    out = {}
    for name, fn in fns.items():
        conv, total = [], []
        for r in range(rounds):
            with prof(activities=[ProfilerActivity.CPU]) as p:
                fn()
            ev = p.key_averages()
            conv.append(sum(e.self_cpu_time_total for e in ev if e.key in CONV_OPS) / 1e6)
            total.append(sum(e.self_cpu_time_total for e in ev) / 1e6)
            if r == 0:
                print(f"\n== {name}")
                print(ev.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))
        out[name] = {"conv_s": statistics.median(conv), "ops_s": statistics.median(total)}
    print("| loop | time in ops (s) | in convolutions (s) | share |\n|---|---|---|---|")
    for name, t in out.items():
        print(f"| {name} | {t['ops_s']:.3f} | {t['conv_s']:.3f} | {t['conv_s'] / t['ops_s']:.0%} |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["official", "shipped", "families", "options", "malloc", "steps", "ddp"])
    p.add_argument("--loop", choices=["pixtrans", "official"], default="pixtrans", help="steps: which loop to time")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--sizes", nargs="+", default=["256x256", "512x256"])
    p.add_argument("--families", nargs="+", default=list(FAMILY_CONFIGS))
    p.add_argument("--family", default="official", help="options: a family, or 'official' (the unet_256 recipe)")
    p.add_argument("--variants", nargs="+", default=["base", "no_fused", "channels_last", "bf16"])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    p.add_argument("--preload", action="append", default=[], help="malloc: also run with this allocator preloaded")
    p.add_argument("--profile", action="store_true", help="official: torch.profiler table of one step each")
    p.add_argument("--json", default="", help="also write the results here")
    a = p.parse_args()
    if not AS_SHIPPED:
        from pixtrans.runtime_env import configure_process

        configure_process()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        fn = {"official": run_official, "families": run_families, "options": run_options}
        fn.update({"malloc": run_malloc, "steps": run_steps, "shipped": run_shipped, "ddp": run_ddp})
        res = fn[a.mode](a, Path(d))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
