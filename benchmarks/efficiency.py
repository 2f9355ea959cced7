"""MSG U-Net vs pix2pixHD (global generator + 1 local enhancer) side by side: GFLOPs, latency, peak memory.

Seed 000 claims MSG U-Net is about 2.5x cheaper than pix2pixHD at the same output size (1.28 vs 3.32 TFLOPs at
2048x1024, half the memory, ~2.5x faster). This script measures both presets (36 input channels: 35 Cityscapes
labels + instance boundary) with :func:`pixtrans.infer.bench.bench_model` and prints a markdown table, the ratios and a
JSON object. Targets: >= 2.5x fewer FLOPs, >= 2.5x lower latency, <= 1/2 the peak memory.

    python benchmarks/efficiency.py                                   # CPU, 1024x512 and 2048x1024
    python benchmarks/efficiency.py --sizes 1024x512 --runs 3 --warmup 1 --json efficiency.json
    python benchmarks/efficiency.py --threads 1                       # a CPU shared with other jobs (see below)
    python benchmarks/efficiency.py --device cuda --runs 20 --warmup 5    # on a GPU (peak = max_memory_allocated)

Latency is reported twice: :func:`pixtrans.infer.bench.bench_model`'s median (each model on its own) and an interleaved
measurement (A B A B ...; ``--paired N`` rounds) whose per-round ratio is robust to load from other processes.
On a CPU whose cores are busy with other jobs, multi-threaded PyTorch loses tens of milliseconds per operator
waiting for its threads to be scheduled; ``--threads 1`` avoids that and gives stable ratios.

The same numbers one at a time: ``pixtrans bench msg_unet --size 1024x512 --json`` and
``pixtrans bench pix2pixhd_local --size 1024x512 --json``. FLOPs count a multiply-add as 2 (divide by 2 to compare
with papers quoting multiply-adds). CPU peak memory is live tensor bytes plus weights and input
(see pixtrans.infer.bench).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time

import torch

from pixtrans.families import preset_model
from pixtrans.infer.bench import bench_model

TARGETS = {"flops": 2.5, "latency": 2.5, "memory": 0.5}


def measure(preset: str, width: int, height: int, sets: list[str], **kw) -> dict:
    model = preset_model(preset, sets)
    try:
        res = bench_model(model, width, height, **kw)
    finally:
        del model
        gc.collect()
    res["model"] = preset
    return res


def paired_latency(presets_sets: list[tuple[str, list[str]]], width: int, height: int, runs: int, device: str) -> dict:
    """Median latency of each model with their forward passes interleaved (A B A B ...), so that load from other
    processes on a shared machine hits both alike; also the median of the per-round ratios (first / second)."""
    from pixtrans.infer.bench import random_input

    dev = torch.device(device)
    mods, xs = [], []
    for preset, sets in presets_sets:
        m = preset_model(preset, sets).eval()
        mods.append(m.inference_module().to(dev))
        xs.append(random_input(m, width, height).to(dev))
    times: list[list[float]] = [[] for _ in mods]
    with torch.inference_mode():
        for mod, x in zip(mods, xs):  # warm-up
            mod(x)
        for _ in range(runs):
            for i, (mod, x) in enumerate(zip(mods, xs)):
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                mod(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                times[i].append(time.perf_counter() - t0)
    del mods, xs
    gc.collect()
    rounds = [b / a for a, b in zip(times[0], times[1])]
    return {"latency_s": [statistics.median(t) for t in times], "all": times, "ratio": statistics.median(rounds)}


def ratios(msg: dict, hd: dict) -> dict:
    return {
        "flops_x_fewer": hd["gflops"] / msg["gflops"],
        "latency_x_lower": hd["latency_s"] / msg["latency_s"],
        "memory_fraction": msg["peak_mem_mb"] / hd["peak_mem_mb"],
    }


def markdown(results: list[dict], summary: dict) -> str:
    lines = [
        "| model | size | params (M) | GFLOPs | latency (s) | peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['size']} | {r['params'] / 1e6:.1f} | {r['gflops']:.1f} | {r['latency_s']:.2f} "
            f"| {r['peak_mem_mb']:.0f} |"
        )
    lines += [
        "",
        "| size | FLOPs (x fewer) | latency (x lower) | latency, interleaved (x lower) | peak memory (fraction) |",
        "|---|---:|---:|---:|---:|",
    ]
    for size, r in summary.items():
        ok = {
            "f": r["flops_x_fewer"] >= TARGETS["flops"],
            "l": r["latency_x_lower"] >= TARGETS["latency"],
            "m": r["memory_fraction"] <= TARGETS["memory"],
        }
        mark = {k: "" if v else " (below target)" for k, v in ok.items()}
        pr = r.get("paired_latency_x_lower")
        paired = "–" if pr is None else f"{pr:.2f}x" + ("" if pr >= TARGETS["latency"] else " (below target)")
        lines.append(
            f"| {size} | {r['flops_x_fewer']:.2f}x{mark['f']} | {r['latency_x_lower']:.2f}x{mark['l']} "
            f"| {paired} | {r['memory_fraction']:.2f}{mark['m']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["1024x512", "2048x1024"], help="WxH output sizes")
    p.add_argument("--msg", default="msg_unet", help="MSG U-Net preset")
    p.add_argument("--hd", default="pix2pixhd_local", help="pix2pixHD preset")
    p.add_argument("--set-msg", action="append", default=[], metavar="KEY=VALUE", help="override the MSG preset")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--paired", type=int, default=3, help="interleaved latency rounds (0 = skip)")
    p.add_argument("--json", default="", help="also write the results to this file")
    a = p.parse_args(argv)

    kw = {"runs": a.runs, "warmup": a.warmup, "device": a.device, "threads": a.threads or None}
    results, summary = [], {}
    for size in a.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        pair = []
        for preset, sets in ((a.msg, a.set_msg), (a.hd, [])):
            r = measure(preset, w, h, sets, **kw)
            print(
                f"{preset} {size}: {r['gflops']:.1f} GFLOPs, {r['latency_s']:.2f} s, {r['peak_mem_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
            results.append(r)
            pair.append(r)
        summary[size] = ratios(*pair)
        if a.paired:
            pl = paired_latency([(a.msg, a.set_msg), (a.hd, [])], w, h, a.paired, a.device)
            summary[size]["paired_latency_s"] = {a.msg: pl["latency_s"][0], a.hd: pl["latency_s"][1]}
            summary[size]["paired_latency_x_lower"] = pl["ratio"]
            print(f"paired {size}: {pl['all']}", file=sys.stderr, flush=True)
    print(markdown(results, summary))
    keep = (
        "model",
        "size",
        "params",
        "gflops",
        "latency_s",
        "latency_all",
        "peak_mem_mb",
        "weights_mb",
        "backend",
        "device",
        "dtype",
        "threads",
        "runs",
        "warmup",
        "torch",
        "peak_mem_method",
    )
    out = {"results": [{k: r[k] for k in keep if k in r} for r in results], "ratios": summary, "targets": TARGETS}
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    torch.manual_seed(0)
    sys.exit(main())
