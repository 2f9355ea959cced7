"""Latency of pixtrans generators next to the official implementations, measured the same way on the same machine.

The official code is not part of pixtrans: point this script at your own checkouts.

    python benchmarks/compare_official.py unet_256 --size 256x256 --official-pix2pix PATH/pytorch-CycleGAN-and-pix2pix
    python benchmarks/compare_official.py pix2pixhd_global --size 512x256 --official-pix2pixhd PATH/pix2pixHD
    python benchmarks/compare_official.py spade_cityscapes --size 512x256 --official-spade PATH/SPADE

Both models run in eval mode under ``torch.inference_mode`` with the same input, thread count, warm-up and number of
runs (pixtrans.infer.bench.benchmark), alternating so that machine load affects both alike.
Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import pickle
import sys
import types
from argparse import Namespace
from pathlib import Path

import torch
from torch import nn

from pixtrans.config import config_from_dict
from pixtrans.families import build_model, presets
from pixtrans.infer.bench import benchmark, random_input


def _stub_torchvision() -> None:
    """The official files import torchvision for their VGG19 only; generators do not need it."""
    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(vgg19=None)
    sys.modules.setdefault("torchvision", tv)


def _load(path: Path, name: str):
    _stub_torchvision()
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_pix2pix(root: Path, preset: str, in_ch: int) -> nn.Module:
    net = _load(root / "models" / "networks.py", "official_pix2pix_networks")
    downs = {"unet_256": 8, "unet_128": 7}[preset]
    norm = functools.partial(nn.BatchNorm2d, affine=True)
    return net.UnetGenerator(in_ch, 3, downs, 64, norm_layer=norm, use_dropout=True)


def official_pix2pixhd(root: Path, preset: str, in_ch: int) -> nn.Module:
    sys.path.insert(0, str(root))
    net = _load(root / "models" / "networks.py", "official_pix2pixhd_networks")
    norm = functools.partial(nn.InstanceNorm2d, affine=False)
    if preset == "pix2pixhd_global":
        return net.GlobalGenerator(in_ch, 3, 64, 4, 9, norm)
    return net.LocalEnhancer(in_ch, 3, 32, 4, 9, 1, 3, norm)


def official_spade(root: Path, preset: str, in_ch: int, w: int, h: int) -> nn.Module:
    sys.path.insert(0, str(root))
    _stub_torchvision()
    if not (root / "models" / "networks" / "sync_batchnorm" / "__init__.py").is_file():
        # the git submodule is often missing; on one process its SynchronizedBatchNorm2d is a BatchNorm2d
        sync = types.ModuleType("models.networks.sync_batchnorm")
        sync.SynchronizedBatchNorm2d = nn.BatchNorm2d
        sync.DataParallelWithCallback = nn.DataParallel
        sys.modules["models.networks.sync_batchnorm"] = sync
    sys.modules.setdefault("dill", pickle)  # their util imports dill for saving only
    from models.networks.generator import SPADEGenerator  # noqa: PLC0415  (their package, from --official-spade)

    opt = Namespace(
        ngf=64,
        semantic_nc=in_ch,
        label_nc=in_ch - 1,
        contain_dontcare_label=False,
        no_instance=False,
        num_upsampling_layers="normal",
        crop_size=w,
        aspect_ratio=w / h,
        use_vae=preset.endswith("vae"),
        z_dim=256,
        norm_G="spectralspadesyncbatch3x3",
        init_type="xavier",
        init_variance=0.02,
    )
    return SPADEGenerator(opt)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset")
    p.add_argument("--size", default="256x256")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--official-pix2pix", type=Path)
    p.add_argument("--official-pix2pixhd", type=Path)
    p.add_argument("--official-spade", type=Path)
    a = p.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    if a.threads:
        torch.set_num_threads(a.threads)
    ours = build_model(config_from_dict(presets()[a.preset], a.preset)).eval()
    x = random_input(ours, w, h, 1)
    fam = ours.family
    if fam == "pix2pix" and a.official_pix2pix:
        theirs = official_pix2pix(a.official_pix2pix, a.preset, x.shape[1])
    elif fam == "pix2pixhd" and a.official_pix2pixhd:
        theirs = official_pix2pixhd(a.official_pix2pixhd, a.preset, x.shape[1])
    elif fam == "spade" and a.official_spade:
        theirs = official_spade(a.official_spade, a.preset, x.shape[1], w, h)
    else:
        raise SystemExit(f"give --official-{fam} PATH (a checkout of the official code) to compare {a.preset}")
    theirs.eval()
    results = {"pixtrans": [], "official": []}
    for _ in range(2):  # alternate so that load changes hit both
        results["pixtrans"].append(benchmark(ours.inference_module(), (x,), runs=a.runs, warmup=a.warmup))
        results["official"].append(benchmark(theirs, (x,), runs=a.runs, warmup=a.warmup))
    for name, rs in results.items():
        best = min(rs, key=lambda r: r["latency_s"])
        keep = ("params", "gflops", "latency_s", "peak_mem_mb", "threads", "size")
        print(json.dumps({"impl": name, "preset": a.preset, **{k: best[k] for k in keep}}))


if __name__ == "__main__":
    main()
