"""Quality on real photos: aligned tasks built from the Cityscapes and COCO-Stuff sample photos, every family trained
for the same CPU budget, pix2pix also at the official recipe for an equal number of steps; PSNR / SSIM (and LPIPS
when weights are given) on held-out photos next to the copy-the-input baseline.

Tasks (input -> photo), built once into ``--out/data/<task>`` in the ``aligned`` layout (A|B side by side):

- ``edges``: Sobel edges of the grey photo, thresholded at its 88th percentile, black lines on white;
- ``grey``: the grey photo (3 equal channels) -> the colour photo;
- ``blur``: Gaussian blur (radius 2 px at the stored size) -> the sharp photo.

Split by photo (black-and-white photos left out): the COCO-Stuff ``val`` photos and the last two Cityscapes
photos are the test set (scaled so the short side is ``--size``, centre-cropped square); every other photo trains
(scaled to a short side of ``--train-side``, so random ``--size`` crops + flips make many different samples out of
a handful of photos).

Every family trains with the shared trainer as in ``equal_budget.py`` (its ``train_for``: batch 1, Adam 2e-4 / 0.5,
lr constant for half the budget then linear to 0 in budget time, budget in process CPU seconds, one thread per run)
with its 128 px architecture and no VGG loss (no weights ship), so pix2pixHD, SPADE and MSG U-Net use their
default reconstruction term (``lambda_L1`` / ``lambda_ssim``, see README). pix2pix is the official recipe
(``unet_128``, 70x70 PatchGAN, vanilla GAN + L1 x100, batch 1); its checkpoint is also tested the way the
official ``test.py`` does without ``--eval`` (batch statistics, dropout on). ``--steps N`` also trains every family,
and the official recipe (official update order, ``train.update_order: d_first``, and plain Adam; tested as
``test.py`` does) with its step-based linear decay, for N steps each (the official code itself is not run: our
networks load its weights layer for layer and the update order is its ``optimize_parameters``).
``msg_unet resize`` is MSG U-Net with ``upsample: resize`` (nearest 2x + 3x3 conv instead of transposed convs).
Example (about 10 CPU-minutes per task; one thread, one run at a time)::

    python benchmarks/real_photos.py --shared ../shared/data --budget 120 --tasks edges blur
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from equal_budget import FAMILIES as EQUAL_BUDGET_FAMILIES  # noqa: E402
from equal_budget import markdown_table, train_for  # noqa: E402

from pixtrans.config import apply_overrides, config_from_dict  # noqa: E402

TASKS = ("edges", "grey", "blur")
DATA = {"layout": "aligned", "label_nc": 0, "input_nc": 3, "no_instance": True, "preprocess": "crop", "flip": True}
# row name -> family and model keys (every family's 128 px architecture of equal_budget.py; SPADE and pix2pixHD at
# ngf 32)
FAMILIES: dict[str, dict] = {
    "pix2pix": {"family": "pix2pix", "model": {**EQUAL_BUDGET_FAMILIES["pix2pix"]["model"], "netG": "unet_128"}},
    # pix2pixHD sized for 128 px as the demo sizes it (ngf 32, 6 residual blocks: 31.5M generator weights instead of
    # 182.4M at ngf 64 / 9 blocks, which gets only 17 steps in 90 CPU-s and is still noise there)
    "pix2pixhd": {
        "family": "pix2pixhd",
        "model": {**EQUAL_BUDGET_FAMILIES["pix2pixhd"]["model"], "ngf": 32, "n_blocks_global": 6},
    },
    "spade": {
        "family": "spade",
        "model": {
            "ngf": 32,
            "spade_nhidden": 64,
            "param_free_norm": "instance",
            "num_D": 2,
            "n_layers_D": 3,
            "no_vgg_loss": True,
        },
    },
    "msg_unet": {"family": "msg_unet", "model": dict(EQUAL_BUDGET_FAMILIES["msg_unet"]["model"])},
    "msg_unet resize": {
        "family": "msg_unet",
        "model": {**EQUAL_BUDGET_FAMILIES["msg_unet"]["model"], "upsample": "resize"},
    },
}
# the official pix2pix recipe (train.py defaults, --netG unet_128: D's step first, then G's through the updated D,
# PyTorch's plain Adam) and its test protocol (test.py without --eval)
OFFICIAL = {
    "family": "pix2pix",
    "model": {**FAMILIES["pix2pix"]["model"], "lambda_ssim": 0.0, "eval_mode": False},
    "train": {"update_order": "d_first", "fused_adam": False},
}


# ------------------------------------------------------------------------------------------------ data
def _photos(shared: Path) -> list[tuple[str, Path, str]]:
    """(name, path, split) for every photo: COCO val and the last two Cityscapes photos are the test set."""
    out = []
    city = sorted((shared / "cityscapes_samples" / "train_img").glob("*.png"))
    for i, p in enumerate(city):
        out.append((f"city_{p.stem.split('_leftImg8bit')[0]}", p, "test" if i >= len(city) - 2 else "train"))
    for split, folder in (("train", "train_img"), ("test", "val_img")):
        for p in sorted((shared / "coco_stuff_samples" / folder).glob("*.jpg")):
            out.append((f"coco_{p.stem}", p, split))
    return [(n, p, s) for n, p, s in out if not _is_grey(p)]


def _is_grey(path: Path) -> bool:
    """Black-and-white photos (two in the COCO sample) would make grey -> colour a copy task: left out."""
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return float(np.abs(a - a.mean(2, keepdims=True)).mean()) < 3.0


def _scaled(img: Image.Image, short: int, square: bool) -> Image.Image:
    w, h = img.size
    s = short / min(w, h)
    img = img.resize((max(short, round(w * s)), max(short, round(h * s))), Image.BICUBIC)
    if square:
        w, h = img.size
        x, y = (w - short) // 2, (h - short) // 2
        img = img.crop((x, y, x + short, y + short))
    return img


def make_input(task: str, photo: Image.Image) -> Image.Image:
    """The task's input for an RGB photo (same size)."""
    grey = photo.convert("L")
    if task == "grey":
        return grey.convert("RGB")
    if task == "blur":
        return photo.filter(ImageFilter.GaussianBlur(2))
    if task == "edges":
        g = np.asarray(grey, dtype=np.float32)
        gx = np.zeros_like(g)
        gy = np.zeros_like(g)
        gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
        gy[1:-1] = g[2:] - g[:-2]
        mag = np.hypot(gx, gy)
        lines = mag > np.percentile(mag, 88)
        return Image.fromarray(np.where(lines, 0, 255).astype(np.uint8)).convert("RGB")
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def build_task(task: str, shared: Path, root: Path, size: int, train_side: int) -> Path:
    """Write the aligned A|B dataset of ``task`` into ``root`` (train/ and test/); returns ``root``."""
    if (root / "done").is_file():
        return root
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    for name, path, split in _photos(shared):
        photo = _scaled(Image.open(path).convert("RGB"), size if split == "test" else train_side, split == "test")
        src = make_input(task, photo)
        ab = Image.new("RGB", (photo.width * 2, photo.height))
        ab.paste(src, (0, 0))
        ab.paste(photo, (photo.width, 0))
        ab.save(root / split / f"{name}.png")
    (root / "done").write_text("ok\n")
    return root


def copy_baseline(root: Path) -> dict:
    """PSNR / SSIM of the input itself against the photo on the test split (what doing nothing scores)."""
    from pixtrans.eval.metrics import MetricAccumulator

    acc = MetricAccumulator()
    for p in sorted((root / "test").glob("*.png")):
        ab = torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1
        w = ab.shape[-1] // 2
        acc.update(ab[None, :, :, :w], ab[None, :, :, w : 2 * w])
    m = acc.compute()
    return {k: m[k] for k in ("psnr", "ssim", "n")}


# ------------------------------------------------------------------------------------------------ runs
def experiment(spec: dict, root: Path, size: int, seed: int, steps: int, sets: list[str]):
    family = spec["family"]
    raw = {
        "family": family,
        "name": f"real_photos_{family}",
        "data": {**DATA, "root": str(root), "load_size": size, "crop_size": size},
        "model": dict(spec["model"]),
        "train": {
            **spec.get("train", {}),
            "steps": steps or 10**7,
            "lr": 2e-4,
            "beta1": 0.5,
            "lr_policy": "linear" if steps else "constant",
            "lr_decay_start": 0.5,
            "seed": seed,
            "device": "cpu",
            "log_every": 25,
            "sample_every": 0,
            "save_every": 0,
            "keep_checkpoints": 1,
            "progress": False,
        },
    }
    apply_overrides(raw, [s.split(":", 1)[1] for s in sets if s.startswith(family + ":")])
    return config_from_dict(raw, f"real_photos {family}")


LPIPS: dict = {}  # ScoreOptions keywords (lpips, lpips_net, lpips_backbone, lpips_heads) when --lpips-* are given
KEYS = ("psnr", "ssim", "lpips", "n")


def evaluate(checkpoint: str, root: Path, out: Path, official_protocol: bool = False) -> dict:
    """PSNR / SSIM (LPIPS with ``--lpips-*``) of a checkpoint on the test photos; ``official_protocol``: a pix2pix
    model tested as the official test.py does without --eval (batch statistics, dropout on)."""
    from pixtrans.eval.evaluate import run_test
    from pixtrans.infer.translator import load

    t = load(checkpoint, device="cpu")
    if official_protocol:
        t.model.cfg.eval_mode = False
        torch.manual_seed(0)  # dropout stays on: a fixed seed makes the row reproducible
    kw = {}
    if LPIPS:
        from pixtrans.eval.scores import ScoreOptions

        kw["scores"] = ScoreOptions(**LPIPS)
    m = run_test(t, root, out, progress=False, **kw)
    return {k: m[k] for k in KEYS if k in m}


def run(name: str, cfg, root: Path, out: Path, budget: float, threads: int, reuse: bool = False) -> dict:
    """Train (for the budget, or ``train.steps`` when budget is 0) and test one configuration; returns its row
    (pix2pix also tested with the official test protocol under ``official_protocol``). ``reuse``: a run of this
    name already trained (its ``run.json``) is tested again instead of trained again."""
    torch.set_num_threads(threads)
    run_dir = out / "runs" / name
    done = run_dir / "run.json"
    if reuse and done.is_file():
        res = json.loads(done.read_text())
    elif run_dir.exists():
        shutil.rmtree(run_dir)  # this script's own output
    torch.manual_seed(cfg.train.seed)
    if reuse and done.is_file():
        pass
    elif budget > 0:
        res = train_for(cfg, run_dir, budget, "cpu")
    else:
        from pixtrans.train.trainer import Trainer

        c0, w0 = time.process_time(), time.perf_counter()
        trainer = Trainer(cfg, run_dir)
        ck = trainer.fit()
        res = {"steps": trainer.step, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
        res["checkpoint"] = str(ck)
    if not (reuse and done.is_file()):
        done.write_text(json.dumps(res) + "\n")
    m = evaluate(res["checkpoint"], root, out / "test" / name)
    row = {"steps": res["steps"], "cpu_s": res["cpu_s"], **m}
    if cfg.family == "pix2pix" and cfg.model.eval_mode:
        off = evaluate(res["checkpoint"], root, out / "test" / f"{name}_official_protocol", official_protocol=True)
        row["official_protocol"] = {"steps": res["steps"], "cpu_s": res["cpu_s"], **off}
    print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def _mean(rows: list[dict]) -> dict:
    keys = ("steps", "cpu_s", "psnr", "ssim") + (("lpips",) if "lpips" in rows[0] else ())
    out = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    return out | {"ssim_per_seed": [r["ssim"] for r in rows]}


def _add(rows: dict, name: str, per: list[dict]) -> None:
    rows[name] = _mean(per)
    if per and "official_protocol" in per[0]:
        rows[f"{name}, tested as official test.py"] = _mean([r["official_protocol"] for r in per])


def markdown(tasks: dict) -> str:
    lines = []
    for task, t in tasks.items():
        b = t["baseline"]
        lp = any("lpips" in r for r in t["rows"].values())
        head = ["model", "steps", "CPU s", "PSNR", "SSIM", *["LPIPS"] * lp, "SSIM per seed"]
        body = [["copy the input", "", "", f"{b['psnr']:.2f}", f"{b['ssim']:.4f}", *[""] * lp, ""]]
        for name, r in t["rows"].items():
            nums = [f"{r['steps']:.0f}", f"{r['cpu_s']:.0f}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}"]
            nums += [f"{r['lpips']:.4f}"] if lp else []
            body.append([name, *nums, " / ".join(f"{v:.3f}" for v in r["ssim_per_seed"])])
        lines += [f"**{task}** (test photos: {b['n']})", "", markdown_table(head, body), ""]
    return "\n".join(lines)


def verdicts(rows: dict) -> dict:
    """The issue's targets for one task's rows (equal budget; equal steps when present)."""
    v = {}
    p = rows.get("pix2pix")
    if p:
        if "msg_unet" in rows:
            v["msg_unet >= pix2pix SSIM"] = rows["msg_unet"]["ssim"] >= p["ssim"]
        for f in ("pix2pixhd", "spade"):
            if f in rows:
                v[f"{f} within 0.02 SSIM of pix2pix"] = rows[f]["ssim"] >= p["ssim"] - 0.02
    off = rows.get("pix2pix, tested as official test.py")
    if p and off:
        v["pix2pix >= official test protocol, same checkpoint (SSIM)"] = p["ssim"] >= off["ssim"]
    ours, off = rows.get("pix2pix @ steps"), rows.get("pix2pix official recipe @ steps")
    if ours and off:
        v["pix2pix >= official recipe at equal steps (SSIM)"] = ours["ssim"] >= off["ssim"]
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default="../shared/data", help="folder with cityscapes_samples/ and coco_stuff_samples/")
    p.add_argument("--out", default="artifacts/real_photos", help="work folder (data, runs, test reports, JSON)")
    p.add_argument("--tasks", nargs="+", default=["edges", "grey"], choices=TASKS)
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--size", type=int, default=128, help="training crop and test image side")
    p.add_argument("--train-side", type=int, default=160, help="short side of the stored training photos")
    p.add_argument("--budget", type=float, default=150.0, help="CPU seconds per family, task and seed (0 = skip)")
    p.add_argument(
        "--steps", type=int, default=0, help="also train every family and the official recipe for this many steps"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1 on a shared machine)")
    p.add_argument("--set", action="append", default=[], metavar="FAMILY:KEY=VALUE", help="override one family's key")
    p.add_argument("--reuse", action="store_true", help="test runs already trained in --out again (no training)")
    p.add_argument("--lpips-net", default="", help="LPIPS backbone (alex, vgg, squeeze): adds an LPIPS column")
    p.add_argument("--lpips-backbone", default=None, help="LPIPS backbone weights file")
    p.add_argument("--lpips-heads", default=None, help="LPIPS linear heads file")
    a = p.parse_args(argv)
    if a.lpips_net:
        LPIPS.update(lpips=True, lpips_net=a.lpips_net, lpips_backbone=a.lpips_backbone, lpips_heads=a.lpips_heads)

    shared, out = Path(a.shared), Path(a.out)
    if not (shared / "coco_stuff_samples").is_dir() or not (shared / "cityscapes_samples").is_dir():
        raise SystemExit(f"--shared {shared}: expected cityscapes_samples/ and coco_stuff_samples/ in it")
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in a.tasks:
        root = build_task(task, shared, out / "data" / task, a.size, a.train_side)
        rows: dict[str, dict] = {}
        if a.budget > 0:
            for name in a.families:
                per = []
                for seed in a.seeds:
                    cfg = experiment(FAMILIES[name], root, a.size, seed, 0, a.set)
                    tag = name.replace(" ", "_")
                    per.append(run(f"{task}_{tag}_s{seed}", cfg, root, out, a.budget, a.threads, a.reuse))
                _add(rows, name, per)
        if a.steps > 0:
            specs = {"pix2pix official recipe": OFFICIAL, **{n: FAMILIES[n] for n in a.families}}
            for name, spec in specs.items():
                per = []
                for seed in a.seeds:
                    cfg = experiment(spec, root, a.size, seed, a.steps, a.set)
                    tag = name.replace(" ", "_")
                    per.append(run(f"{task}_{tag}_{a.steps}steps_s{seed}", cfg, root, out, 0, a.threads, a.reuse))
                rows[f"{name} @ steps"] = _mean(per)
        results[task] = {"baseline": copy_baseline(root), "rows": rows, "verdict": verdicts(rows)}
    print(markdown(results))
    for task, t in results.items():
        for k, v in t["verdict"].items():
            print(f"{task}: {k}: {v}")
    summary = {
        "budget_cpu_s": a.budget,
        "steps": a.steps,
        "threads": a.threads,
        "size": a.size,
        "seeds": a.seeds,
        "results": results,
        "torch": torch.__version__,
    }
    (out / "real_photos.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
