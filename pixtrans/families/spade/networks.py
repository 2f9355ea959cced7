"""spade networks (generator, discriminator and encoder modules, typed arguments)."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from ...layers.spade import ParamFreeNorm, SPADEResnetBlock, SyncBatchNorm2d

UpLayers = Literal["normal", "more", "most"]
NUM_UP = {"normal": 5, "more": 6, "most": 7}
DNorm = Literal["instance", "batch", "sync_batch", "none"]


# ---------------------------------------------------------------------------------------------- generator
class SPADEGenerator(nn.Module):
    """``fc`` (3x3 conv on the downsampled segmap, or ``Linear(z)`` with the VAE) at 1/2^k resolution, then
    ``head_0``, ``G_middle_0/1`` and ``up_0..up_3`` (+ ``up_4`` for 'most') SPADE ResBlks with 2x nearest upsampling,
    leaky ReLU, ``conv_img`` and tanh. ``k`` = 5 / 6 / 7 for ``num_upsampling_layers`` normal / more / most.

    ``crop_size`` (width) and ``aspect_ratio`` (width / height) of the training crops size the VAE's ``fc``
    (official: ``sw = crop_size / 2^k``, ``sh = round(sw / aspect_ratio)``); without the VAE they do not matter.
    """

    def __init__(
        self,
        semantic_nc: int,
        ngf: int = 64,
        z_dim: int = 256,
        use_vae: bool = False,
        num_upsampling_layers: UpLayers = "normal",
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        param_free: ParamFreeNorm = "sync_batch",
        spectral: bool = True,
        spade_ks: int = 3,
        spade_nhidden: int = 128,
        output_nc: int = 3,
    ):
        super().__init__()
        # the arguments that rebuild this generator (see fold_spectral_norm)
        self.init_args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if num_upsampling_layers not in NUM_UP:
            raise ValueError(f"num_upsampling_layers must be one of {', '.join(NUM_UP)}, not {num_upsampling_layers!r}")
        self.n_up = NUM_UP[num_upsampling_layers]
        self.ngf, self.z_dim, self.use_vae = ngf, z_dim, use_vae
        self.sw = crop_size // 2**self.n_up
        self.sh = round(self.sw / aspect_ratio)
        nf = ngf
        if use_vae:
            if self.sw < 1 or self.sh < 1:
                raise ValueError(
                    f"crop_size {crop_size} with aspect_ratio {aspect_ratio} is too small for the VAE generator's "
                    f"{self.n_up} upsamplings: it needs crop_size >= {2**self.n_up} and a start map of >= 1 row"
                )
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        block = partial(
            SPADEResnetBlock,
            label_nc=semantic_nc,
            spectral=spectral,
            param_free=param_free,
            ks=spade_ks,
            nhidden=spade_nhidden,
        )
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if self.n_up == 7:
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)

    @property
    def size_multiple(self) -> int:
        return 2**self.n_up

    def fold_spectral_norm(self) -> SPADEGenerator:
        """An inference copy without spectral-norm hooks: each weight divided once by the sigma of its stored
        ``u``, ``v`` (what eval mode recomputes on every call), so outputs match this generator in eval mode.

        Built on the meta device and filled with (shared, not copied) tensors, so it is cheap; the copy must not
        be trained, and ``self`` keeps its spectral norm.
        """
        state = self.state_dict()
        folded = {}
        for k, v in state.items():
            if k.endswith(("weight_u", "weight_v")):
                continue
            if k.endswith("weight_orig"):
                pre = k[: -len("weight_orig")]
                u, vv = state[pre + "weight_u"], state[pre + "weight_v"]
                sigma = torch.dot(u, torch.mv(v.reshape(v.shape[0], -1), vv))
                folded[pre + "weight"] = v / sigma
            else:
                folded[k] = v
        with torch.device("meta"):
            g = SPADEGenerator(**{**self.init_args, "spectral": False})
        g.load_state_dict(folded, assign=True)
        return g.train(self.training)

    def _start(self, seg: Tensor, z: Tensor | None) -> Tensor:
        h, w = seg.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"SPADE generator: input {w}x{h} must have sides that are multiples of {m} "
                f"(num_upsampling_layers gives {self.n_up} upsamplings); pad or resize it (the translator pads)"
            )
        sh, sw = h // m, w // m
        if not self.use_vae:
            return self.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))
        if z is None:
            z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
        if z.shape[0] != seg.shape[0]:
            z = z.expand(seg.shape[0], -1)
        x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        if (sh, sw) != (self.sh, self.sw):  # another size than the training crop: resize the start map
            x = F.interpolate(x, size=(sh, sw), mode="nearest")
        return x

    def forward(self, seg: Tensor, z: Tensor | None = None) -> Tensor:
        x = self.head_0(self._start(seg, z), seg)
        x = self.G_middle_0(_up(x), seg)
        if self.n_up >= 6:
            x = _up(x)
        x = self.G_middle_1(x, seg)
        for name in ("up_0", "up_1", "up_2", "up_3", "up_4")[: 4 + (self.n_up == 7)]:
            x = getattr(self, name)(_up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


# ---------------------------------------------------------------------------------------------- encoder
def _sn_conv_norm(conv: nn.Conv2d, norm: DNorm, spectral: bool = True) -> nn.Module:
    """Official ``get_nonspade_norm_layer``: spectral norm on ``conv``; with a norm, ``Sequential(conv, norm)`` and
    the conv without bias (the norm makes it redundant)."""
    if norm != "none":
        conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)
    if spectral:
        conv = spectral_norm(conv)
    if norm == "none":
        return conv
    c = conv.out_channels
    layer = {
        "instance": lambda: nn.InstanceNorm2d(c, affine=False),
        "batch": lambda: nn.BatchNorm2d(c, affine=True),
        "sync_batch": lambda: SyncBatchNorm2d(c, affine=True),
    }[norm]()
    return nn.Sequential(conv, layer)


class ConvEncoder(nn.Module):
    """VAE style encoder: the photo resized to 256x256, six 3x3 stride-2 convs (ngf .. 8 ngf, spectral + instance
    norm, leaky ReLU 0.2) down to 4x4, then ``fc_mu`` / ``fc_var`` to ``z_dim``. Returns ``(mu, logvar)``.

    (The official code drops ``layer6`` for crops under 256 px, which then cannot run because the input is
    always resized to 256; we always keep it.)
    """

    def __init__(self, ngf: int = 64, z_dim: int = 256, in_ch: int = 3):
        super().__init__()
        chans = [in_ch, ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8, ngf * 8]
        for i in range(6):
            self.add_module(f"layer{i + 1}", _sn_conv_norm(nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1), "instance"))
        self.fc_mu = nn.Linear(ngf * 8 * 4 * 4, z_dim)
        self.fc_var = nn.Linear(ngf * 8 * 4 * 4, z_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-2:] != (256, 256):
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        for i in range(6):
            x = F.leaky_relu(getattr(self, f"layer{i + 1}")(x), 0.2)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """``mu + eps * exp(logvar / 2)`` with ``eps ~ N(0, I)``."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


# ---------------------------------------------------------------------------------------------- discriminator
class SPADENLayerDiscriminator(nn.Module):
    """One scale of the SPADE discriminator: 4x4 convs (padding 2), widths ndf .. min(ndf 2^n, 512), stride 2
    except the last hidden conv and the 1-channel output conv; returns every block's output (the last = logits).

    Blocks are ``model0`` .. ``model{n_layers}`` as official; the hidden convs get spectral norm + ``norm``.
    """

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 4, norm: DNorm = "instance", spectral: bool = True):
        super().__init__()
        if in_ch < 1 or ndf < 1 or n_layers < 1:
            raise ValueError("SPADENLayerDiscriminator: in_ch, ndf and n_layers must be >= 1")
        self.n_blocks = n_layers + 1
        nf = ndf
        self.model0 = nn.Sequential(nn.Conv2d(in_ch, nf, 4, 2, 2), nn.LeakyReLU(0.2))
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = _sn_conv_norm(nn.Conv2d(nf_prev, nf, 4, stride, 2), norm, spectral)
            self.add_module(f"model{n}", nn.Sequential(conv, nn.LeakyReLU(0.2)))
        self.add_module(f"model{n_layers}", nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for n in range(self.n_blocks):
            x = getattr(self, f"model{n}")(x)
            feats.append(x)
        return feats


# ---------------------------------------------------------------------------------------------- family
