"""Convolutions at small inputs as matrix multiplies (im2col / col2im), for CPU training.

oneDNN spends the convolutions at a U-Net's or a ResNet generator's innermost levels (1x1 to 16x16 inputs, up to
9 M weights per layer) mostly reordering weights and allocating: on the 2-core CPU here a 1024 -> 512, 4x4 stride-2
transposed convolution at a 4x4 input took 18 ms forward and 65 ms forward + backward, against 3 ms and 20 ms as
``W^T @ x`` followed by ``F.fold``; a 1024-channel 3x3 residual-block convolution at 16x16 150 vs 124 ms (layers
timed alone). Whole steps: ``python benchmarks/train_step.py options --family official --variants base
no_gemm_convs``. The results are the same sums in another order (max abs ~5e-6). Autograd differentiates
``unfold``/``fold`` and the matmul, so the backward runs as matrix multiplies too. Larger inputs keep PyTorch's own
kernels. ``train.gemm_small_convs`` switches it on (the default, CPU only); parameter names, ``state_dict`` and
checkpoints are unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# input height x width up to which the matmul path runs (measured faster up to these; slower at 34x34)
MAX_PIXELS_CONV = 18 * 18  # a 3x3 convolution of a reflection-padded 16x16 map
MAX_PIXELS_DECONV = 16 * 16


def conv_gemm(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (groups 1, dilation 1) as ``W @ unfold(x)``."""
    n, _, h, w = x.shape
    cout, _, kh, kw = weight.shape
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (w + 2 * padding[1] - kw) // stride[1] + 1
    y = weight.reshape(cout, -1) @ F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (n, cout, oh*ow)
    if bias is not None:
        y = y + bias.view(1, -1, 1)
    return y.reshape(n, cout, oh, ow)


def deconv_gemm(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, output_padding) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)`` (groups 1, dilation 1) as
    ``W^T @ x`` -> column blocks -> ``F.fold``."""
    n, cin, h, w = x.shape
    cout, kh, kw = weight.shape[1:]
    oh = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    ow = (w - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    cols = weight.reshape(cin, cout * kh * kw).t() @ x.reshape(n, cin, h * w)  # (n, cout*kh*kw, h*w)
    y = F.fold(cols, (oh, ow), (kh, kw), padding=padding, stride=stride)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _small(x: Tensor, limit: int) -> bool:
    return x.dim() == 4 and x.device.type == "cpu" and x.shape[-2] * x.shape[-1] <= limit


class GemmConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that runs :func:`conv_gemm` for CPU inputs of at most :data:`MAX_PIXELS_CONV`."""

    def forward(self, x: Tensor) -> Tensor:
        if not _small(x, MAX_PIXELS_CONV):
            return super().forward(x)
        return conv_gemm(x, self.weight, self.bias, self.stride, self.padding)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    """An ``nn.ConvTranspose2d`` that runs :func:`deconv_gemm` for CPU inputs of at most :data:`MAX_PIXELS_DECONV`."""

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        if output_size is not None or not _small(x, MAX_PIXELS_DECONV):
            return super().forward(x, output_size)
        return deconv_gemm(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)


SWAPS = {nn.Conv2d: GemmConv2d, nn.ConvTranspose2d: GemmConvTranspose2d}


def supported(m: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` (not a subclass, e.g. spectral-norm parametrised) that the
    matmul path covers: groups 1, dilation 1, zero padding given as numbers."""
    return (
        type(m) in SWAPS
        and m.groups == 1
        and tuple(m.dilation) == (1, 1)
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def use_gemm_convs(model: nn.Module) -> int:
    """Switch every supported convolution of ``model`` to its matmul-at-small-inputs subclass in place (same
    parameters, buffers and names); returns how many."""
    n = 0
    for m in model.modules():
        if supported(m):
            m.__class__ = SWAPS[type(m)]
            n += 1
    return n


def plain_convs(model: nn.Module) -> None:
    """Undo :func:`use_gemm_convs` (PyTorch's own kernels at every size)."""
    back = {v: k for k, v in SWAPS.items()}
    for m in model.modules():
        if type(m) in back:
            m.__class__ = back[type(m)]
