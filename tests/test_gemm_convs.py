"""train.gemm_small_convs: convolutions at small inputs as matrix multiplies (pixtrans/layers/gemm_conv.py).

The layers must give what PyTorch's own kernels give (values and all three gradients) for every shape they take,
fall back to those kernels above the size limit, and leave parameter names and checkpoints unchanged."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_train_speed import _trainer
from torch import nn

from pixtrans.layers import gemm_conv as G
from pixtrans.layers.gemm_conv import GemmConv2d, GemmConvTranspose2d, plain_convs, use_gemm_convs


def _grads(layer: nn.Module, x: torch.Tensor, seed: int = 0):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    y.backward(g)
    out = [y.detach(), x.grad] + [p.grad for p in layer.parameters()]
    layer.zero_grad(set_to_none=True)
    return out


def _pair(layer: nn.Module) -> tuple[nn.Module, nn.Module]:
    fast = copy.deepcopy(layer)
    assert use_gemm_convs(fast) == 1 and type(fast) in (GemmConv2d, GemmConvTranspose2d)
    return layer, fast


@settings(max_examples=40, deadline=None)
@given(
    transposed=st.booleans(),
    cin=st.integers(1, 6),
    cout=st.integers(1, 6),
    k=st.integers(1, 4),
    stride=st.integers(1, 2),
    pad=st.integers(0, 2),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    n=st.integers(1, 2),
    bias=st.booleans(),
)
def test_matches_pytorch_values_and_gradients_in_float64(transposed, cin, cout, k, stride, pad, h, w, n, bias):
    torch.manual_seed(0)
    if transposed:
        pad = min(pad, k - 1)
        op = stride - 1 if k >= 2 else 0  # output_padding < stride
        if (min(h, w) - 1) * stride - 2 * pad + k + op < 1:
            return  # no output pixel
        layer = nn.ConvTranspose2d(cin, cout, k, stride, pad, output_padding=op, bias=bias).double()
    else:
        if h + 2 * pad < k or w + 2 * pad < k:
            return
        layer = nn.Conv2d(cin, cout, k, stride, pad, bias=bias).double()
    x = torch.randn(n, cin, h, w, dtype=torch.float64)
    ref, fast = _pair(layer)
    for a, b in zip(_grads(ref, x), _grads(fast, x)):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    "layer, size",
    [
        (nn.ConvTranspose2d(64, 32, 4, 2, 1), (4, 4)),  # pix2pix U-Net up-convolution
        (nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), (5, 7)),  # pix2pixHD up-convolution
        (nn.Conv2d(32, 32, 4, 2, 1, bias=False), (8, 8)),  # U-Net down-convolution
        (nn.Conv2d(32, 32, 3), (18, 18)),  # residual block convolution after reflection padding (16x16)
    ],
)
def test_float32_layers_of_the_generators_agree(layer, size):
    x = torch.randn(2, layer.in_channels, *size, generator=torch.Generator().manual_seed(1))
    ref, fast = _pair(layer)
    for a, b in zip(_grads(ref, x), _grads(fast, x)):
        assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(a.abs().max()))


def test_large_inputs_run_pytorchs_own_kernel(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("matmul path used above the limit")

    conv, deconv = _pair(nn.Conv2d(4, 4, 3, padding=1))[1], _pair(nn.ConvTranspose2d(4, 4, 4, 2, 1))[1]
    monkeypatch.setattr(G, "conv_gemm", boom)
    monkeypatch.setattr(G, "deconv_gemm", boom)
    conv(torch.randn(1, 4, 19, 18))  # 342 > 18*18 pixels
    deconv(torch.randn(1, 4, 17, 16))  # 272 > 16*16
    with pytest.raises(AssertionError, match="matmul path"):
        conv(torch.randn(1, 4, 18, 18))
    with pytest.raises(AssertionError, match="matmul path"):
        deconv(torch.randn(1, 4, 16, 16))


def test_only_plain_layers_are_switched_and_names_stay():
    sn = nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 3, 3))
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(4, 4, 3, dilation=2), nn.Conv2d(4, 3, 3, padding="same"), sn, nn.ConvTranspose2d(3, 3, 4, 2, 1),
    )  # fmt: skip
    keys = list(net.state_dict())
    assert use_gemm_convs(net) == 2
    assert [type(m).__name__ for m in net][:2] == ["GemmConv2d", "Conv2d"] and type(net[6]) is GemmConvTranspose2d
    assert list(net.state_dict()) == keys
    plain_convs(net)
    assert type(net[0]) is nn.Conv2d and type(net[6]) is nn.ConvTranspose2d


@pytest.mark.parametrize("family", ["pix2pix", "pix2pixhd"])
def test_trainer_switches_them_on_cpu_and_checkpoints_load_as_plain_layers(family, synth_root, tmp_path):
    import pixtrans

    on = _trainer(family, synth_root, tmp_path / "on")
    off = _trainer(family, synth_root, tmp_path / "off", "train.gemm_small_convs=false")
    fast = [m for m in on.model.modules() if isinstance(m, (GemmConv2d, GemmConvTranspose2d))]
    assert fast and not any(isinstance(m, (GemmConv2d, GemmConvTranspose2d)) for m in off.model.modules())
    assert list(on.model.state_dict()) == list(off.model.state_dict())
    batch = next(off._batches())[1]
    a, b = on.train_step(batch, 0), off.train_step(batch, 0)
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(b[k])) for k in a), (a, b)
    on.save()
    t = pixtrans.load(tmp_path / "on")
    assert not any(isinstance(m, (GemmConv2d, GemmConvTranspose2d)) for m in t.model.modules())
