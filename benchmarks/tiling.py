"""Exact tiled inference (pixtrans.infer.tiling): tiled-vs-untiled PSNR per checkpoint, peak RSS tiled vs untiled.

    python benchmarks/tiling.py psnr RUN [RUN ...] --size 2048x1024 --tile 512
    python benchmarks/tiling.py rss --preset pix2pixhd_local --size 4096x2048 --tile 512 [--untiled]

``psnr``: each checkpoint translates the same synthetic street label map (a generated scene, nearest-upscaled to
``--size``, with its instance map) whole and with ``--tile``; prints PSNR and max abs difference of the float outputs
(use trained checkpoints: random weights saturate). ``rss``: a fresh process per mode builds the preset (random
weights) and translates a label map of ``--size``
through ``Translator.translate`` (ids in, image out), reporting wall time and peak RSS (``VmHWM``);
``--untiled`` also runs the whole-image path. ``--skip-compute`` replaces every convolution by zeros of its output's
shape (the same tensors are allocated and written, no FLOPs): the memory figure alone, in minutes where the real
4096x2048 run takes about half an hour on a loaded 2-core machine (2.90 GiB real vs 2.99 GiB stubbed).
Every mode prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[5])
from tiling import label_map
from pixtrans.config import config_from_dict
from pixtrans.families import build_model, presets
from pixtrans.infer.translator import Translator

preset, w, h, tile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if sys.argv[6] == "skip":  # convolutions return zeros of their output's shape: the same tensors, no FLOPs
    import torch.nn.functional as F

    def stub(real):
        def conv(x, weight, *args, **kwargs):
            if not isinstance(x, torch.Tensor):
                return real(x, weight, *args, **kwargs)  # a tiled map: its handler calls back here per tile
            meta = real(x.to("meta"), weight.to("meta"), *[a.to("meta") if isinstance(a, torch.Tensor) else a
                        for a in args], **kwargs)
            return torch.zeros(meta.shape, dtype=x.dtype)
        return conv

    F.conv2d, F.conv_transpose2d = stub(F.conv2d), stub(F.conv_transpose2d)
cfg = config_from_dict(presets()[preset])
with torch.no_grad():
    model = build_model(cfg, inference=True).eval()
t = Translator(model, cfg, {})
ids, inst = label_map(w, h, cfg.data.label_nc)
def hwm():  # peak RSS of this process (VmHWM; ru_maxrss may carry a forking parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

base = hwm()
t0 = time.perf_counter()
img = t.translate(ids, instances=inst, tile=tile)
dt = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"tile": tile, "seconds": round(dt, 1), "peak_rss_gib": round(peak, 3),
                  "rss_before_gib": round(base, 3), "size": list(img.size)}))
"""


def label_map(w: int, h: int, label_nc: int, seed: int = 0):
    """A synthetic street scene (pixtrans data synth) at 1/8 of ``w`` x ``h``, nearest-upscaled: ids, instances."""
    import numpy as np

    from pixtrans.data.synth import _scene

    label, inst, _, _ = _scene(np.random.default_rng(seed), max(8, w // 8), max(8, h // 8))
    ys = np.arange(h) * label.shape[0] // h
    xs = np.arange(w) * label.shape[1] // w
    ids = (label[ys][:, xs].astype(np.int64) % max(1, label_nc)).astype(np.int64)
    return ids, inst[ys][:, xs].astype(np.int64)


def _size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def cmd_psnr(a) -> dict:
    import torch

    import pixtrans

    w, h = _size(a.size)
    rows = []
    for run in a.runs:
        t = pixtrans.load(run, device="cpu")
        ids, inst = label_map(w, h, t.data.label_nc)
        batch = {"input": torch.from_numpy(ids)[None, None], "inst": torch.from_numpy(inst)[None, None]}
        style = t.model.eval_style()
        t0 = time.perf_counter()
        whole = t.translate_tensor(t.model.prepare(dict(batch)), style).image
        t1 = time.perf_counter()
        tiled = t._tiled(t.model.prepare(dict(batch), encode=False), style, a.tile).image
        t2 = time.perf_counter()
        mse = float(((whole.double() - tiled.double()) ** 2).mean())
        row = {
            "run": str(run),
            "family": t.family,
            "size": a.size,
            "tile": a.tile,
            "psnr_db": round(math.inf if mse == 0 else 10 * math.log10(4 / mse), 1),
            "max_abs": float((whole - tiled).abs().max()),
            "output_std": round(float(whole.std()), 3),
            "untiled_s": round(t1 - t0, 1),
            "tiled_s": round(t2 - t1, 1),
            "saturated": round(float((whole.abs() > 0.999).float().mean()), 3),
        }
        rows.append(row)
        print(f"{t.family:10s} {run}: PSNR {row['psnr_db']} dB, max abs {row['max_abs']:.2e} "
              f"(output std {row['output_std']}, {row['saturated']:.1%} saturated; untiled {row['untiled_s']} s, "
              f"tiled {row['tiled_s']} s)")  # fmt: skip
        del whole, tiled
    return {"mode": "psnr", "rows": rows}


def cmd_rss(a) -> dict:
    from pathlib import Path

    w, h = _size(a.size)
    here = str(Path(__file__).resolve().parent)
    modes = [a.tile] + ([0] if a.untiled else [])
    rows = []
    for tile in modes:
        cmd = [sys.executable, "-c", CHILD, a.preset, str(w), str(h), str(tile), here]
        cmd.append("skip" if a.skip_compute else "run")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            rows.append({"tile": tile, "error": out.returncode})
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        what = f"tile {tile}" if tile else "untiled"
        print(f"{a.preset} {a.size} {what}: peak RSS {row['peak_rss_gib']} GiB, {row['seconds']} s")
    return {"mode": "rss", "preset": a.preset, "size": a.size, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("psnr", help="tiled vs untiled output of checkpoints")
    q.add_argument("runs", nargs="+")
    q.add_argument("--size", default="2048x1024")
    q.add_argument("--tile", type=int, default=512)
    r = sub.add_parser("rss", help="peak RSS of a preset's translation, tiled (and untiled)")
    r.add_argument("--preset", default="pix2pixhd_local")
    r.add_argument("--size", default="4096x2048")
    r.add_argument("--tile", type=int, default=512)
    r.add_argument("--untiled", action="store_true", help="also the whole-image path (needs much more memory)")
    r.add_argument(
        "--skip-compute",
        action="store_true",
        help="convolutions return zeros of the right shape (same tensors, no FLOPs: memory on a slow machine)",
    )
    a = p.parse_args()
    res = cmd_psnr(a) if a.mode == "psnr" else cmd_rss(a)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
