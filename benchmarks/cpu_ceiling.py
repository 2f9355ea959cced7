"""How far a faster runtime can go on this CPU: the machine's matrix-multiply rate per precision against the rate a
preset's generator already reaches in torch fp32 eager.

    python benchmarks/cpu_ceiling.py unet_256:256x256 pix2pixhd_global:512x256 --runs 3

For each dtype (fp32, bf16, fp16) a 2048^3 ``torch.matmul`` on this process's threads gives GFLOP/s (best of
``--runs``; 2 FLOPs per multiply-add, the convention of ``pixtrans bench``). For each ``PRESET:WxH`` the generator's
FLOPs (FlopCounterMode) over its median torch fp32 latency gives the rate it reaches, and the speedup a runtime would
get by running every FLOP at the fp32 matmul rate (``ceiling_fp32``) or the fastest one (``ceiling``). A
convolution network cannot beat that without doing fewer FLOPs (e.g. Winograd) -- which bounds what ONNX Runtime,
OpenVINO or reduced precision can give here.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pixtrans.families import preset_model
from pixtrans.infer.bench import _cpu_name, bench_model

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_gflops(dtype: torch.dtype, n: int = 2048, runs: int = 3) -> float:
    """GFLOP/s of an n^3 matmul in ``dtype`` (the best of ``runs`` after one warm-up: what the CPU can do)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def preset_rate(spec: str, runs: int) -> dict:
    """GFLOPs, median torch fp32 latency and GFLOP/s of a preset's generator at ``PRESET:WxH``."""
    name, _, size = spec.partition(":")
    w, h = (int(v) for v in (size or "256x256").lower().split("x"))
    model = preset_model(name, inference=True)
    r = bench_model(model, w, h, runs=runs, warmup=1)
    return {"preset": name, "size": f"{w}x{h}", "gflops": r["gflops"], "latency_s": r["latency_s"],
            "gflops_per_s": r["gflops"] / r["latency_s"]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("presets", nargs="*", default=["unet_256:256x256"], help="PRESET:WxH")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    peak = {k: matmul_gflops(v, runs=a.runs) for k, v in DTYPES.items()}
    best = max(peak.values())
    rows = [preset_rate(s, a.runs) for s in a.presets]
    for r in rows:
        r["ceiling_fp32"] = peak["fp32"] / r["gflops_per_s"]
        r["ceiling"] = best / r["gflops_per_s"]
    if a.json:
        print(json.dumps({"cpu": _cpu_name(), "threads": torch.get_num_threads(), "matmul": peak, "presets": rows}))
        return
    print(f"{_cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| matmul 2048^3 | " + " | ".join(f"{k}: {v:.0f} GFLOP/s" for k, v in peak.items()) + " |")
    print("\n| preset @ size | GFLOPs | torch fp32 eager | reached | ceiling at fp32 matmul rate | at the fastest |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} @ {r['size']} | {r['gflops']:.1f} | {r['latency_s'] * 1e3:.0f} ms | "
              f"{r['gflops_per_s']:.0f} GFLOP/s | {r['ceiling_fp32']:.2f}x | {r['ceiling']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
