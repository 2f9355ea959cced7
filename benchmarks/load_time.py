"""Load time and resident memory of ``pixtrans.load`` (generator side only, only its tensors read) against building
the whole training module and reading every tensor (what loading did before the slim inference path).

    python benchmarks/load_time.py --preset pix2pixhd_local --repeats 3

Makes a checkpoint of the preset with random weights (and an EMA copy of G, as training with ``train.ema`` writes)
in a temporary folder, then alternates the two ways in fresh processes (A B A B ...); prints the median wall time
and peak RSS (``VmHWM``) of each, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import sys, time
t0 = time.perf_counter()
import torch
from pixtrans.checkpoints import load_checkpoint_files
from pixtrans.families import build_model
import pixtrans
t1 = time.perf_counter()
if sys.argv[1] == "full":
    ck, cfg, weights, meta = load_checkpoint_files(sys.argv[2])
    model = build_model(cfg)
    model.load_checkpoint_state({k: v for k, v in weights.items() if not k.startswith("ema.")})
    model.generators().load_state_dict({k[4:]: v for k, v in weights.items() if k.startswith("ema.")})
    n = sum(p.numel() for p in model.parameters())
else:
    t = pixtrans.load(sys.argv[2], device="cpu")
    n = sum(p.numel() for p in t.model.parameters())
t2 = time.perf_counter()
# VmHWM: this process's own peak (ru_maxrss keeps the parent's peak across fork + exec on Linux)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(t2 - t1, t1 - t0, hwm, n)
"""


def make_checkpoint(preset: str, root: Path) -> Path:
    import torch

    from pixtrans.checkpoints import save_checkpoint
    from pixtrans.config import config_from_dict
    from pixtrans.families import build_model
    from pixtrans.registry import presets

    cfg = config_from_dict(presets()[preset], preset)
    model = build_model(cfg)
    weights = model.checkpoint_state()
    weights |= {"ema." + k: v.clone() for k, v in model.generators().state_dict().items()}
    del model
    torch.manual_seed(0)
    return save_checkpoint(root / "run", 1, cfg, weights, {})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="pix2pixhd_local")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ck = make_checkpoint(a.preset, Path(tmp))
        size = (ck / "model.safetensors").stat().st_size / 2**20
        res: dict[str, list] = {"full": [], "slim": []}
        for _ in range(a.repeats):
            for mode in res:
                out = subprocess.run([sys.executable, "-c", CHILD, mode, str(ck)], capture_output=True, text=True)
                if out.returncode:
                    sys.exit(out.stderr)
                res[mode].append([float(v) for v in out.stdout.split()])
    row = {"preset": a.preset, "checkpoint_mb": round(size, 1)}
    for mode, runs in res.items():
        row[mode] = {
            "load_s": round(statistics.median(r[0] for r in runs), 3),
            "peak_rss_mb": round(statistics.median(r[2] for r in runs), 1),
            "params": int(runs[0][3]),
        }
        print(f"{mode:>4}: load {row[mode]['load_s']:.2f} s, peak RSS {row[mode]['peak_rss_mb']:.0f} MB, "
              f"{row[mode]['params']:,} parameters")  # fmt: skip
    print(json.dumps(row))


if __name__ == "__main__":
    main()
