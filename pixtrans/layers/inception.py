"""The FID Inception-v3 (TensorFlow's 2015-12-05 graph as ported by pytorch-fid / torch-fidelity), pool3 features.

This is the network every published FID and KID is computed with. Its weight file,
``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release; torch-fidelity ships the same tensors as
``weights-inception-2015-12-05-6726825d.pth``), uses torchvision's Inception3 key layout (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean`` ... ``fc.weight`` with 1008 classes, no ``AuxLogits``).

pixtrans never downloads weights on its own. :func:`load_fid_inception` looks, in order, at the ``weights`` argument,
the ``PIXTRANS_INCEPTION`` environment variable and the torch hub cache (``<hub dir>/checkpoints/`` under either
file name); a URL is only fetched when one is given explicitly.

Differences from torchvision's Inception3, as in the TF graph: average pools do not count padding, the last block
pools with max instead of average, and the input is resized to 299x299 with TF1's bilinear rule (no half-pixel
centres, no antialiasing) from the 0-255 scale and mapped by ``(x - 128) / 128``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .pretrained import check_state, find_weights, hub_checkpoints, read_state, save_state

INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
ENV_VAR = "PIXTRANS_INCEPTION"
INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys ``conv.weight`` and ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (average pool, padding not counted) and Mixed_7c (``max_pool=True``, as in the TF graph)."""

    def __init__(self, cin: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


def resize_bilinear_tf1(x: Tensor, size: int) -> Tensor:
    """TF1 ``resize_bilinear(align_corners=False)``: source coordinate = ``dst * in / out`` (no half-pixel shift)."""

    def axis(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        src = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo).to(x.dtype)

    h, w = x.shape[-2:]
    y0, y1, wy = axis(h)
    x0, x1, wx = axis(w)
    rows = x[..., y0, :] + (x[..., y1, :] - x[..., y0, :]) * wy.view(-1, 1)
    return rows[..., x0] + (rows[..., x1] - rows[..., x0]) * wx


class FIDInceptionV3(nn.Module):
    """Pool3 (2048-d) features of the FID Inception; ``forward`` takes (N, 3, H, W) RGB on the 0-255 scale (uint8 or
    float) and returns (N, 2048) float32. ``num_features`` tells torchmetrics the feature size."""

    num_features = NUM_FEATURES

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)  # kept for the key layout; FID/KID use pool3

    def train(self, mode: bool = True) -> FIDInceptionV3:
        return super().train(False)  # BatchNorm uses the stored statistics, always

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"FID Inception expects (N, 3, H, W) RGB images, got shape {tuple(x.shape)}")
        x = resize_bilinear_tf1(x.float(), INPUT_SIZE)
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


def _meta_state() -> dict[str, Tensor]:
    """Keys and shapes of the weight file (BatchNorm's ``num_batches_tracked`` counters are not in it)."""
    with torch.device("meta"):
        return {k: v for k, v in FIDInceptionV3().state_dict().items() if "num_batches_tracked" not in k}


def _missing_message(problem: str) -> str:
    hub = hub_checkpoints()
    return (
        f"{problem} FID and KID need the FID Inception-v3 weights: download {INCEPTION_URL} (92 MB) to "
        f"{hub / INCEPTION_FILES[0]}, or set {ENV_VAR}=/path/to/{INCEPTION_FILES[0]} (.pth or .safetensors) or "
        f"--inception FILE, or leave out --fid/--kid"
    )


def find_fid_inception_weights(weights: str | os.PathLike | None = None) -> str:
    """Resolve where the weights come from (argument, env var, hub cache) or raise WeightsMissingError."""
    return find_weights(weights, ENV_VAR, INCEPTION_FILES, "FID Inception", _missing_message)


def _read_state(source: str) -> dict:
    expected = f"a state dict saved with torch.save (.pth) or as .safetensors, e.g. {INCEPTION_URL}"
    return read_state(source, "FID Inception", _missing_message, expected)


def check_fid_inception_state(state: Mapping, source: str) -> dict[str, Tensor]:
    """Validate keys and shapes (``module.`` prefixes, ``AuxLogits.*`` and ``num_batches_tracked`` are ignored)."""
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.") and "num_batches_tracked" not in k}
    hint = f"expected pt_inception-2015-12-05-6726825d.pth ({INCEPTION_URL})"
    return check_state(state, _meta_state(), source, "the FID Inception", "not the FID Inception-v3", hint)


def load_fid_inception(weights: str | os.PathLike | None = None) -> FIDInceptionV3:
    """The FID Inception with weights from a file (see the module docstring for where it looks), in eval mode."""
    source = find_fid_inception_weights(weights)
    state = check_fid_inception_state(_read_state(source), source)
    with torch.device("meta"):
        model = FIDInceptionV3()
    model.load_state_dict(state, assign=True, strict=False)  # num_batches_tracked is not in the file
    for name, buf in model.named_buffers():
        if buf.is_meta:  # num_batches_tracked: unused in eval mode
            owner, attr = name.rsplit(".", 1)
            setattr(model.get_submodule(owner), attr, torch.zeros((), dtype=torch.long))
    model.source = source
    return model.eval().requires_grad_(False)


def save_random_fid_inception(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a randomly initialised FID Inception in the weight file's layout (tests; no ``num_batches_tracked``).

    Convs get Kaiming-normal weights (fan-in, so activations keep their scale through the eval-mode BatchNorms),
    BatchNorm statistics and affine terms are near identity but not exactly, so a load round-trip checks them."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for k, v in _meta_state().items():
        if k.endswith("conv.weight"):
            fan_in = v.shape[1] * v.shape[2] * v.shape[3]
            state[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif k.endswith("running_var"):
            state[k] = 1 + 0.1 * torch.rand(v.shape, generator=g)
        elif k.endswith(("running_mean", "bn.bias")):
            state[k] = 0.01 * torch.randn(v.shape, generator=g)
        elif k.endswith("bn.weight"):
            state[k] = 1 + 0.01 * torch.randn(v.shape, generator=g)
        else:  # fc
            state[k] = 0.01 * torch.randn(v.shape, generator=g)
    return save_state(state, path)
