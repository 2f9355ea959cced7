"""Instance-wise average pooling: vectorised (pixtrans) vs the official pix2pixHD python loop, at 100 instances.

    .venv/bin/python benchmarks/bench_instance_pool.py [--size 1024x512] [--instances 100] [--threads 2] [--json]

The baseline re-creates the official ``Encoder.forward`` pooling: for every id in ``np.unique(inst)``, for every
batch element, ``nonzero`` of the mask, then per channel a gather, a mean and a scatter back. Both are timed on the
same random feature map (3 channels, as pix2pixHD's ``feat_num``) and an instance map of ``--instances`` regions
(Cityscapes-style ids ``class*1000+k``, and arbitrary large ids that take the run-length + ``unique`` path), forward and
forward+backward, best of ``--runs`` (robust to other load on the machine). Prints a table and, with ``--json``,
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from pixtrans.layers.instance_pool import instance_mean_pool


def official_loop_pool(outputs: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """The official python triple loop (models/networks.py ``Encoder.forward``), re-created for comparison."""
    outputs_mean = outputs.clone()
    for i in np.unique(inst.cpu().numpy().astype(int)):
        for b in range(outputs.shape[0]):
            indices = (inst[b : b + 1] == int(i)).nonzero()
            for j in range(outputs.shape[1]):
                sel = (indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3])
                output_ins = outputs[sel]
                outputs_mean[sel] = torch.mean(output_ins).expand_as(output_ins)
    return outputs_mean


def instance_map(h: int, w: int, n: int, large_ids: bool, seed: int = 0) -> torch.Tensor:
    """(1, 1, H, W) map of ``n`` Voronoi regions with Cityscapes-style ids (or large arbitrary ids)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g) * torch.tensor([h, w])
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    best = torch.full((h, w), float("inf"))
    region = torch.zeros(h, w, dtype=torch.long)
    for k in range(n):  # memory-light nearest centre
        d = (yy - centres[k, 0]) ** 2 + (xx - centres[k, 1]) ** 2
        closer = d < best
        best = torch.where(closer, d, best)
        region[closer] = k
    if large_ids:
        ids = torch.randint(2**32, 2**40, (n,), generator=g) // n * n + torch.arange(n)  # distinct, > 65535
    else:
        ids = torch.tensor([(24 + k % 10) * 1000 + k // 10 for k in range(n)])  # e.g. 26000 = car #0
    return ids[region].reshape(1, 1, h, w)


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1024x512", help="WxH")
    p.add_argument("--instances", type=int, default=100)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=5, help="timed runs; the best is reported")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    w, h = (int(v) for v in a.size.lower().split("x"))
    feat = torch.randn(a.batch, a.channels, h, w, generator=torch.Generator().manual_seed(1))
    rows = []
    for large in (False, True):
        inst = instance_map(h, w, a.instances, large).expand(a.batch, 1, h, w).contiguous()
        n_ids = int(torch.unique(inst).numel())
        fast_out, ref_out = instance_mean_pool(feat, inst), official_loop_pool(feat, inst)
        err = float((fast_out - ref_out).abs().max())
        assert err < 1e-4, f"vectorised pooling differs from the official loop by {err}"
        for mode in ("forward", "forward+backward"):

            def run(fn, mode=mode, inst=inst):
                if mode == "forward":
                    with torch.no_grad():
                        fn(feat, inst)
                else:
                    f = feat.clone().requires_grad_(True)
                    fn(f, inst).sum().backward()

            t_off = min(timed(lambda run=run: run(official_loop_pool), a.runs))
            t_new = min(timed(lambda run=run: run(instance_mean_pool), a.runs))
            rows.append(
                {
                    "ids": "large" if large else "cityscapes",
                    "instances": n_ids,
                    "mode": mode,
                    "official_loop_s": t_off,
                    "vectorised_s": t_new,
                    "speedup": t_off / t_new,
                    "max_abs_diff": err,
                }
            )
    result = {
        "benchmark": "instance_mean_pool",
        "size": f"{w}x{h}",
        "batch": a.batch,
        "channels": a.channels,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rows": rows,
        "min_speedup": min(r["speedup"] for r in rows),
    }
    print(f"instance-wise mean pooling, {w}x{h}, batch {a.batch}, {a.channels} channels, {a.threads} threads")
    print(f"{'ids':<11}{'inst':>5}  {'mode':<17}{'official loop':>14}{'vectorised':>12}{'speed-up':>10}")
    for r in rows:
        print(
            f"{r['ids']:<11}{r['instances']:>5}  {r['mode']:<17}{r['official_loop_s'] * 1e3:>11.1f} ms"
            f"{r['vectorised_s'] * 1e3:>9.2f} ms{r['speedup']:>9.1f}x"
        )
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
