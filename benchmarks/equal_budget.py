"""Quality at an equal compute budget: pix2pix, pix2pixHD and MSG U-Net trained on the same synthetic label->photo
data at 128 px for the same CPU budget, then PSNR / SSIM / VIF on held-out synthetic scenes.

Every model trains with the shared trainer (same data, seed, batch size 1, Adam 2e-4 / 0.5) until the budget is
spent; the learning rate is constant for the first half of the budget and decays linearly to 0 over the second
half (the step-based linear policy, expressed in budget time since the step counts differ). The budget is measured
in process CPU seconds by default (``--clock cpu``), which stays fair when other jobs share the machine;
``--clock wall`` uses wall-clock seconds. Each family uses its usual 128 px architecture (``--set FAMILY:key=value``
changes one):

- pix2pix: unet_128 (ngf 64, batch norm, dropout), 70x70 PatchGAN, vanilla GAN + 100 L1;
- pix2pixHD: global generator (ngf 64, 4 downsamplings, 9 res blocks), 2 discriminator scales, LSGAN + 10 FM;
- MSG U-Net: ngf 32 (about pix2pix's compute per image at 128 px: 3.9 vs 3.1 GFLOPs), outputs at 128/64/32/16 px,
  8x8 bottleneck, one D per scale, LSGAN + 10 FM.

No VGG loss for any (no weights ship). ``--seeds`` repeats every run with other seeds (same data) and averages;
``--jobs`` runs that many trainings at once, each in its own process with ``--threads`` threads. Example (prints a
markdown table and writes equal_budget.json)::

    python benchmarks/equal_budget.py --budget 600 --seeds 0 1 2 --jobs 2 --out artifacts/equal_budget
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from pixtrans.config import apply_overrides, config_from_dict

DATA = {
    "layout": "synth",
    "label_nc": 8,
    "preprocess": "resize_and_crop",
    "load_size": 128,
    "crop_size": 128,
    "flip": True,
    "batch_size": 1,
}
FAMILIES: dict[str, dict] = {
    "pix2pix": {
        "data": {"no_instance": True},
        "model": {
            "netG": "unet",
            "num_downs": 7,
            "ngf": 64,
            "ndf": 64,
            "norm": "batch",
            "dropout": True,
            "gan_mode": "vanilla",
            "lambda_L1": 100.0,
        },
    },
    "pix2pixhd": {
        "data": {"no_instance": False},
        "model": {
            "netG": "global",
            "ngf": 64,
            "n_downsample_global": 4,
            "n_blocks_global": 9,
            "num_D": 2,
            "gan_mode": "lsgan",
            "lambda_feat": 10.0,
            "no_vgg_loss": True,
            "use_features": False,
        },
    },
    "msg_unet": {
        "data": {"no_instance": False},
        "model": {
            "ngf": 32,
            "n_scales": 4,
            "n_extra_down": 1,
            "gan_mode": "lsgan",
            "lambda_feat": 10.0,
            "no_vgg_loss": True,
        },
    },
}


def experiment(family: str, data_root: Path, seed: int, sets: list[str]):
    spec = FAMILIES[family]
    raw = {
        "family": family,
        "name": f"equal_budget_{family}",
        "data": {**DATA, **spec["data"], "root": str(data_root)},
        "model": dict(spec["model"]),
        "train": {
            "steps": 10**7,
            "lr": 2e-4,
            "beta1": 0.5,
            "lr_policy": "constant",
            "seed": seed,
            "device": "cpu",
            "log_every": 50,
            "sample_every": 0,
            "save_every": 0,
            "keep_checkpoints": 1,
            "progress": False,
        },
    }
    apply_overrides(raw, [s.split(":", 1)[1] for s in sets if s.startswith(family + ":")])
    return config_from_dict(raw, f"equal_budget {family}")


def train_for(cfg, out: Path, budget: float, clock: str) -> dict:
    """Train ``cfg`` into ``out`` until ``budget`` seconds of ``clock`` are spent; returns steps and times."""
    from torch.optim.lr_scheduler import LambdaLR

    from pixtrans.train.trainer import Trainer

    now = time.process_time if clock == "cpu" else time.perf_counter
    trainer = Trainer(cfg, out)
    t0, c0, w0 = now(), time.process_time(), time.perf_counter()

    def lr_scale(_step: int) -> float:  # constant for the first half of the budget, then linear to 0
        return min(1.0, max(0.0, 2.0 * (1.0 - (now() - t0) / budget)))

    trainer.scheds = {n: LambdaLR(o, lr_scale) for n, o in trainer.opts.items()}
    ck = trainer.fit(lambda t: now() - t0 >= budget)
    return {
        "steps": trainer.step,
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - w0,
        "checkpoint": str(ck),
    }


def evaluate(checkpoint: str, data_root: Path, out: Path) -> dict:
    """Test metrics of ``checkpoint`` on the held-out scenes, with its generator's parameter count."""
    from pixtrans.eval.evaluate import run_test
    from pixtrans.infer.translator import load

    t = load(checkpoint, device="cpu")
    m = run_test(t, data_root, out, progress=False)
    return {"params_G": t.meta.get("params_G", 0), **{k: m[k] for k in ("psnr", "ssim", "vif", "n")}}


def run_one(family: str, seed: int, data: Path, out: Path, budget: float, clock: str, threads: int, sets: list[str]):
    """Train one family with one seed for the budget and test it; returns its row (runs in a worker process)."""
    torch.set_num_threads(threads)
    cfg = experiment(family, data, seed, sets)
    run = out / "runs" / f"{family}_s{seed}"
    if run.exists():
        shutil.rmtree(run)  # a fresh run each time (the folder is this script's own output)
    torch.manual_seed(seed)
    res = train_for(cfg, run, budget, clock)
    metrics = evaluate(res["checkpoint"], data, out / "test" / f"{family}_s{seed}")
    row = {"params_G": metrics.pop("params_G"), **{k: res[k] for k in ("steps", "cpu_s", "wall_s")}, **metrics}
    print(f"{family} seed {seed}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def summarise(per_seed: dict[int, dict]) -> dict:
    """Mean of every number over seeds, with the per-seed rows kept."""
    rows = list(per_seed.values())
    mean = {k: statistics.fmean(r[k] for r in rows) for k in ("steps", "cpu_s", "wall_s", "psnr", "ssim", "vif")}
    return {"params_G": rows[0]["params_G"], **mean, "seeds": per_seed}


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also for real_photos.py): the first and last columns left-aligned, the numbers between
    right-aligned; an empty cell is left blank."""

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    rule = "|" + "|".join(["---", *["---:"] * (len(head) - 2), "---"]) + "|"
    return "\n".join([line(head), rule, *map(line, rows)])


def markdown(rows: dict) -> str:
    head = ["model", "G params (M)", "steps", "CPU s", "wall s", "PSNR", "SSIM", "VIF", "SSIM per seed"]
    body = []
    for name, r in rows.items():
        nums = [f"{r['params_G'] / 1e6:.2f}", *(f"{r[k]:.0f}" for k in ("steps", "cpu_s", "wall_s"))]
        nums += [f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['vif']:.4f}"]
        body.append([name, *nums, " / ".join(f"{v['ssim']:.3f}" for v in r["seeds"].values())])
    return markdown_table(head, body)


def _kept_results(path: Path, a) -> dict:
    """Earlier results to keep (``--keep``); an error if they were measured under other settings."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    same = {"budget": a.budget, "clock": a.clock, "threads": a.threads, "seeds": a.seeds}
    differ = [k for k, v in same.items() if old.get(k) != v]
    if differ:
        raise SystemExit(f"--keep: {path} was measured with other {', '.join(differ)}; run every family again")
    return old["results"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="artifacts/equal_budget", help="work folder (data, runs, test reports, JSON)")
    p.add_argument("--data", default="", help="existing synthetic dataset (default: generate one in --out/data)")
    p.add_argument("--n", type=int, default=64, help="training scenes to generate")
    p.add_argument("--n-test", type=int, default=16, help="held-out scenes to generate")
    p.add_argument("--data-seed", type=int, default=1, help="seed of the generated dataset")
    p.add_argument("--budget", type=float, default=600.0, help="seconds per model (see --clock)")
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (1 is robust on a shared machine)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds; metrics are averaged over them")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes; keep jobs x threads <= cores)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the other families' results from --out/equal_budget.json (same budget, clock, threads, seeds)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FAMILY:KEY=VALUE",
        help="override a config key of one family, e.g. msg_unet:model.ngf=24",
    )
    a = p.parse_args(argv)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(a.data) if a.data else out / "data"
    if not a.data and not (data / "classes.json").is_file():
        from pixtrans.data.synth import generate

        generate(data, n=a.n, n_test=a.n_test, size=128, seed=a.data_seed)
    kept = _kept_results(out / "equal_budget.json", a) if a.keep else {}
    jobs = [(f, s) for s in a.seeds for f in a.families]
    common = (data, out, a.budget, a.clock, a.threads, a.set)
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(run_one, *zip(*[(f, s, *common) for f, s in jobs])))
    else:
        done = [run_one(f, s, *common) for f, s in jobs]
    rows = {f: r for f, r in kept.items() if f not in a.families}
    rows |= {f: summarise({s: r for (f2, s), r in zip(jobs, done) if f2 == f}) for f in a.families}
    rows = {f: rows[f] for f in FAMILIES if f in rows}
    print(markdown(rows))
    verdict = {}
    if {"msg_unet", "pix2pixhd"} <= set(rows):
        verdict["msg_within_0.02_ssim_of_pix2pixhd"] = rows["msg_unet"]["ssim"] >= rows["pix2pixhd"]["ssim"] - 0.02
    if {"msg_unet", "pix2pix"} <= set(rows):
        verdict["msg_above_pix2pix"] = rows["msg_unet"]["ssim"] > rows["pix2pix"]["ssim"]
    for k, v in verdict.items():
        print(f"{k} (mean over seeds): {v}")
    summary = {
        "budget": a.budget,
        "clock": a.clock,
        "threads": a.threads,
        "size": 128,
        "data": str(data),
        "seeds": a.seeds,
        "results": rows,
        "verdict": verdict,
        "torch": torch.__version__,
    }
    (out / "equal_budget.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
