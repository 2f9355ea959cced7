"""SPADE layers: spatially-adaptive normalisation and the SPADE residual block (Park et al. 2019).

Module and parameter names follow the official NVlabs/SPADE code (``param_free_norm``, ``mlp_shared.0``,
``mlp_gamma``, ``mlp_beta``; ``conv_0``/``conv_1``/``conv_s`` with ``weight_orig``/``weight_u``/``weight_v`` under
spectral norm; ``norm_0``/``norm_1``/``norm_s``), so official state dicts load by name.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from .blocks import SyncBatchNorm2d

ParamFreeNorm = Literal["sync_batch", "batch", "instance"]
PARAM_FREE_NORMS: tuple[str, ...] = ("sync_batch", "batch", "instance")
__all__ = ["PARAM_FREE_NORMS", "SPADE", "SPADEResnetBlock", "SyncBatchNorm2d", "param_free_norm"]


def param_free_norm(kind: ParamFreeNorm, channels: int) -> nn.Module:
    """A normalisation without learned affine parameters (SPADE supplies the scale and shift)."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "sync_batch":
        return SyncBatchNorm2d(channels, affine=False)
    raise ValueError(f"param_free_norm: unknown kind {kind!r}; choose one of {', '.join(PARAM_FREE_NORMS)}")


class SPADE(nn.Module):
    """``norm(x) * (1 + gamma(seg)) + beta(seg)`` with gamma, beta from a shared conv + ReLU on the resized segmap.

    Args:
        norm_nc: channels of the normalised activations (and of gamma, beta).
        label_nc: channels of the semantic map.
        param_free: the parameter-free normalisation (``sync_batch``, ``batch`` or ``instance``).
        ks: kernel size of the three convs (official: 3).
        nhidden: channels of the shared embedding (official: 128).
    """

    def __init__(
        self, norm_nc: int, label_nc: int, param_free: ParamFreeNorm = "sync_batch", ks: int = 3, nhidden: int = 128
    ):
        super().__init__()
        if ks < 1 or ks % 2 == 0:
            raise ValueError(f"SPADE: kernel size must be odd and positive, got {ks}")
        self.param_free_norm = param_free_norm(param_free, norm_nc)
        pw = ks // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, ks, padding=pw), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, ks, padding=pw)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, ks, padding=pw)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        actv = self.mlp_shared(F.interpolate(segmap, size=x.shape[2:], mode="nearest"))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Pre-activation residual block: SPADE -> leaky ReLU(0.2) -> 3x3 conv, twice; learned 1x1 shortcut when
    ``fin != fout`` (SPADE -> conv, no activation). Spectral norm on the convs (not on SPADE's) as official."""

    def __init__(
        self,
        fin: int,
        fout: int,
        label_nc: int,
        spectral: bool = True,
        param_free: ParamFreeNorm = "sync_batch",
        ks: int = 3,
        nhidden: int = 128,
    ):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = spectral_norm if spectral else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = SPADE(fin, label_nc, param_free, ks, nhidden)
        self.norm_1 = SPADE(fmiddle, label_nc, param_free, ks, nhidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, param_free, ks, nhidden)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx
