"""``pixtrans demo``: synthetic data -> short CPU training -> test (trained and untrained) -> HTML report."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


def run_demo(
    out: str | Path = "demo", steps: int = 1500, size: int = 64, n: int = 64, config: str = "", ngf: int = 32
) -> dict:
    """Run the whole main job into ``out``; returns the trained and untrained metrics.

    pix2pix (U-Net, ngf 32) on the synthetic street scenes: a few minutes on 2 CPU cores.
    """
    import torch

    from .config import load_config
    from .data.synth import generate
    from .eval.evaluate import run_test
    from .families import build_model
    from .infer.translator import Translator, load
    from .train.trainer import train

    out = Path(out)
    data, run = out / "data", out / "run"
    t0 = time.perf_counter()
    print(f"[1/4] synthetic dataset ({n} train scenes, {size}px) -> {data}")
    generate(data, n=n, size=size, seed=0, progress=True)
    cfg = load_config(
        config or Path(__file__).parent / "configs" / "pix2pix_synth.yaml",
        [
            f"data.root={data}",
            f"train.steps={steps}",
            "train.sample_every=250",
            f"train.save_every={max(steps // 4, 1)}",
            "train.log_every=25",
            f"data.load_size={size}",
            f"data.crop_size={size}",
            f"model.ngf={ngf}",
            f"model.ndf={ngf}",
        ],
    )
    if run.exists():
        shutil.rmtree(run)
    print(f"[2/4] training {cfg.family} for {steps} steps on the CPU -> {run}")
    ck = train(cfg, run)
    print("[3/4] testing the untrained model (same architecture, same seed) as the baseline")
    torch.manual_seed(cfg.train.seed)
    baseline = Translator(build_model(cfg), cfg, {}, None)
    base_m = run_test(baseline, data, out / "untrained")
    print("[4/4] testing the trained model")
    m = run_test(load(ck), data, out / "report")
    summary = {
        "trained": {k: m[k] for k in ("psnr", "ssim", "vif", "n")},
        "untrained": {k: base_m[k] for k in ("psnr", "ssim", "vif", "n")},
        "steps": steps,
        "minutes": round((time.perf_counter() - t0) / 60, 2),
        "report": str(out / "report" / "index.html"),
        "losses": str(run / "losses.png"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"HTML report: {out / 'report' / 'index.html'}")
    return summary
