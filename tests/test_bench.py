"""Benchmark core: fields, FLOPs against a hand count, memory counts activations, bench_model on a tiny family."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from pixtrans.config import DataConfig, Section
from pixtrans.errors import ConfigError
from pixtrans.families.base import TranslationModel
from pixtrans.infer.bench import bench_model, benchmark

FIELDS = {
    "params",
    "gflops",
    "flops_convention",
    "latency_s",
    "latency_all",
    "peak_mem_mb",
    "backend",
    "device",
    "dtype",
    "threads",
    "size",
}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_single_conv_matches_hand_count():
    b, cin, cout, k, h, w = 2, 3, 8, 3, 32, 24
    conv = nn.Conv2d(cin, cout, k, stride=2, padding=1)
    x = torch.randn(b, cin, h, w)
    r = benchmark(conv, (x,), runs=3, warmup=1)
    assert set(r) >= FIELDS
    ho, wo = h // 2, w // 2
    assert r["gflops"] * 1e9 == pytest.approx(2 * b * cout * cin * k * k * ho * wo)  # multiply-add = 2 FLOPs
    assert "2 FLOPs" in r["flops_convention"]
    assert r["params"] == cout * cin * k * k + cout
    assert len(r["latency_all"]) == 3 and r["latency_s"] == statistics.median(r["latency_all"])
    assert r["backend"] == "cpu" and r["dtype"] == "float32" and r["threads"] == 1 and r["size"] == f"{w}x{h}"
    # live bytes at the peak: weights + input + output (one conv, nothing else)
    expected = 4 * (r["params"] + x.numel() + b * cout * ho * wo)
    assert r["peak_mem_mb"] * 2**20 == pytest.approx(expected)


def test_peak_memory_counts_activations_and_grows_with_size():
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 3, 3, padding=1),
    )
    net.train()
    small = benchmark(net, (torch.randn(1, 3, 32, 32),), runs=1, warmup=0)
    big = benchmark(net, (torch.randn(1, 3, 64, 64),), runs=1, warmup=0)
    assert net.training  # train flag restored
    # the peak is while the first ReLU runs: weights + input + two 16-channel maps (conv1 output, ReLU output)
    assert small["peak_mem_mb"] * 2**20 == pytest.approx(4 * (small["params"] + 3 * 32 * 32 + 2 * 16 * 32 * 32))
    assert big["peak_mem_mb"] > 3 * small["peak_mem_mb"] * 0.9
    assert big["gflops"] == pytest.approx(4 * small["gflops"])


def test_dtype_is_applied():
    conv = nn.Conv2d(3, 4, 3)
    r = benchmark(conv, (torch.randn(1, 3, 16, 16),), runs=1, warmup=0, dtype=torch.bfloat16)
    assert r["dtype"] == "bfloat16" and conv.weight.dtype == torch.bfloat16


class _Tiny(TranslationModel):
    family = "tiny"

    def __init__(self, data: DataConfig):
        super().__init__(Section(), data)
        self.G = nn.Conv2d(self.in_channels, 3, 3, padding=1)
        self.D = nn.Conv2d(self.in_channels + 3, 1, 4)  # not used by inference

    @property
    def size_multiple(self) -> int:
        return 4

    def generate(self, x):
        return [torch.tanh(self.G(x["input"]))]


def test_bench_model_label_input():
    model = _Tiny(DataConfig(label_nc=5, no_instance=False))
    r = bench_model(model, 24, 16, batch=2, runs=1, warmup=0)
    assert r["family"] == "tiny" and r["batch"] == 2 and r["size"] == "24x16"
    assert r["input_shapes"] == [[2, 6, 16, 24]]  # 5 one-hot channels + boundary
    g_params = sum(p.numel() for p in model.G.parameters())
    assert r["params"] == r["params_used"] == g_params  # the discriminator is not part of inference
    assert r["gflops"] * 1e9 == pytest.approx(2 * 2 * 3 * 6 * 9 * 16 * 24)


def test_bench_model_rejects_bad_size():
    model = _Tiny(DataConfig(label_nc=0, input_nc=3))
    with pytest.raises(ConfigError, match="multiples of 4"):
        bench_model(model, 30, 16)


class _WithSpare(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Conv2d(3, 4, 3)
        self.spare = nn.Linear(10, 10)  # held but never called

    def forward(self, x):
        return self.used(x)


def test_params_used_leaves_out_idle_modules():
    m = _WithSpare()
    r = benchmark(m, (torch.randn(1, 3, 8, 8),), runs=1, warmup=0)
    assert r["params"] == 4 * 3 * 9 + 4 + 110 and r["params_used"] == 4 * 3 * 9 + 4
