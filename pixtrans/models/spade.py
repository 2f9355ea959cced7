"""SPADE (Park et al. 2019): a generator built from SPADE residual blocks, a multi-scale spectral-norm PatchGAN with
the hinge loss, and an optional VAE style encoder.

Module names and state-dict keys follow NVlabs/SPADE (``models/networks``), so official weights import by a plain
key mapping: ``G.<key>`` = official ``netG`` key, ``E.<key>`` = ``netE``, ``D.<key>`` = ``netD``. Spectral norm is
``torch.nn.utils.spectral_norm`` (``weight_orig``/``weight_u``/``weight_v``) on exactly the official layers: the
convs of every G residual block, the middle convs of each D scale and every conv of the encoder; not on the G's
``fc``/``conv_img``, SPADE's own convs, nor the first and last conv of each D scale.

Differences from the official code, all at inference only: the G starts from the segmap's own size
(``H / 2^k``, ``W / 2^k``) rather than the training crop, so any input whose sides are multiples of
:attr:`SPADE.size_multiple` works; with the VAE the ``z -> map`` layer is sized for the training crop, and its map
is nearest-resized when another size is asked for. Styles (:meth:`SPADE.translate`) are seeded or taken from a
reference photo's mean code, and recorded.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from ..config import DataConfig, Section, TrainConfig
from ..errors import ConfigError, DataError
from ..losses import GANLoss, GanMode, feature_matching_loss, kl_loss
from ..nn.blocks import InitKind, init_weights
from ..nn.spade import ParamFreeNorm, SPADEResnetBlock, SyncBatchNorm2d
from .base import OptimGroup, Translation, TranslationModel
from .discriminators import MultiScaleDiscriminator

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
class Config(Section):
    """SPADE model settings (defaults: the official Cityscapes/COCO recipe)."""

    ngf: int = 64
    ndf: int = 64
    z_dim: int = 256
    use_vae: bool = False  # VAE style encoder E; translate() then takes a seed or a reference photo
    num_upsampling_layers: UpLayers = "normal"  # the G starts at 1/32 (normal), 1/64 (more), 1/128 (most)
    # official norm_G 'spectralspadesyncbatch3x3' as typed fields:
    param_free_norm: ParamFreeNorm = "sync_batch"  # SPADE's parameter-free norm (sync_batch = batch on 1 process)
    spade_ks: int = 3  # kernel size of SPADE's convs
    spade_nhidden: int = 128  # channels of SPADE's shared embedding (official: 128; lower it for tiny CPU runs)
    spectral: bool = True  # spectral norm on the G residual-block convs
    # official norm_D 'spectralinstance':
    norm_D: DNorm = "instance"
    spectral_D: bool = True
    n_layers_D: int = 4
    num_D: int = 2
    gan_mode: GanMode = "hinge"
    lambda_feat: float = 10.0
    no_ganFeat_loss: bool = False
    lambda_vgg: float = 10.0
    no_vgg_loss: bool = False
    vgg_weights: str = ""  # VGG19 weights file or URL ("" = $PIXTRANS_VGG19 or the torch hub cache)
    lambda_kld: float = 0.05
    # TTUR: with train.lr_D unset, G (+E) get train.lr / 2 and D train.lr * 2 (official, from lr 2e-4 -> 1e-4 /
    # 4e-4); with train.lr_D set, G uses train.lr and D train.lr_D as given. Adam betas are train.beta1/beta2
    # (official TTUR: 0 and 0.9, as in the spade configs).
    ttur: bool = True
    crop_size: int = 0  # training crop width that sizes the VAE's z -> map layer; 0 = data.crop_size
    aspect_ratio: float = 1.0  # width / height of the training crops (Cityscapes: 2.0 for 512x256)
    init_type: InitKind = "xavier"
    init_gain: float = 0.02

    @model_validator(mode="after")
    def _check(self):
        if min(self.ngf, self.ndf, self.z_dim, self.n_layers_D, self.num_D, self.spade_nhidden) < 1:
            raise ValueError("ngf, ndf, z_dim, spade_nhidden, n_layers_D and num_D must be >= 1")
        if self.num_upsampling_layers == "most" and self.ngf < 2:
            raise ValueError("num_upsampling_layers 'most' needs ngf >= 2 (its last block has ngf / 2 channels)")
        if self.spade_ks < 1 or self.spade_ks % 2 == 0:
            raise ValueError("spade_ks must be an odd kernel size (official: 3)")
        if self.aspect_ratio <= 0 or self.crop_size < 0:
            raise ValueError("aspect_ratio must be > 0 and crop_size >= 0")
        if min(self.lambda_feat, self.lambda_vgg, self.lambda_kld) < 0:
            raise ValueError("loss weights (lambda_*) must be >= 0")
        return self


class SPADE(TranslationModel):
    """The SPADE family: ``G`` (:class:`SPADEGenerator`), ``D`` (multi-scale :class:`SPADENLayerDiscriminator`
    on ``cat(semantics, image)``), ``E`` (:class:`ConvEncoder`, only with ``use_vae``).

    Losses (weighted): G_GAN (hinge), G_GAN_Feat (λ_feat, SPADE weighting), G_VGG (λ_vgg), KLD (λ_kld);
    D_real, D_fake (hinge).
    """

    family = "spade"
    Config = Config

    def __init__(self, cfg: Config, data: DataConfig):
        super().__init__(cfg, data)
        sem = self.in_channels
        self.G = SPADEGenerator(
            sem,
            ngf=cfg.ngf,
            z_dim=cfg.z_dim,
            use_vae=cfg.use_vae,
            num_upsampling_layers=cfg.num_upsampling_layers,
            crop_size=cfg.crop_size or data.crop_size,
            aspect_ratio=cfg.aspect_ratio,
            param_free=cfg.param_free_norm,
            spectral=cfg.spectral,
            spade_ks=cfg.spade_ks,
            spade_nhidden=cfg.spade_nhidden,
            output_nc=data.output_nc,
        )
        d_in = sem + data.output_nc
        make_d = partial(SPADENLayerDiscriminator, d_in, cfg.ndf, cfg.n_layers_D, cfg.norm_D, cfg.spectral_D)
        self.D = MultiScaleDiscriminator(make_d, cfg.num_D)
        self.E = ConvEncoder(cfg.ngf, cfg.z_dim, data.output_nc) if cfg.use_vae else None
        for net in (self.G, self.D, self.E):
            if net is not None:
                init_weights(net, cfg.init_type, cfg.init_gain)
        self.gan_loss = GANLoss(cfg.gan_mode)
        self.vgg_loss: nn.Module | None = None  # built on first use (needs weights; not needed for inference)

    @property
    def size_multiple(self) -> int:
        return self.G.size_multiple

    # ---------------------------------------------------------------- training
    def encode(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of a photo batch in [-1, 1] (VAE only)."""
        if self.E is None:
            raise ConfigError("this SPADE model has no style encoder (model.use_vae is false)")
        return self.E(image)

    def generate(self, x: dict) -> list[Tensor]:
        """Training pass. With the VAE and a target, z is sampled from E(target) (mu/logvar kept in ``x``)."""
        z = None
        if self.E is not None and "target" in x:
            mu, logvar = self.E(x["target"])
            x["mu"], x["logvar"] = mu, logvar
            z = reparameterize(mu, logvar)
        return [self.G(x["input"], z)]

    def discriminate(self, seg: Tensor, fake: Tensor, real: Tensor) -> tuple[list, list]:
        """D on fakes and reals in one batch (as official: shared norm statistics); per-scale feature lists."""
        both = torch.cat([torch.cat([seg, fake.to(seg.dtype)], 1), torch.cat([seg, real.to(seg.dtype)], 1)], 0)
        n = fake.shape[0]
        out = self.D(both)
        return [[f[:n] for f in scale] for scale in out], [[f[n:] for f in scale] for scale in out]

    def _vgg(self) -> nn.Module:
        if self.vgg_loss is None:
            from ..nn.vgg import VGGLoss

            self.vgg_loss = VGGLoss(self.cfg.vgg_weights).to(self.device)
        return self.vgg_loss

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cfg, fake, real = self.cfg, fakes[-1], _target(x)
        pred_fake, pred_real = self.discriminate(x["input"], fake, real)
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            losses["G_GAN_Feat"] = feature_matching_loss(pred_real, pred_fake, cfg.lambda_feat, layer_weight=1.0)
        if not cfg.no_vgg_loss:
            losses["G_VGG"] = self._vgg()(fake, real) * cfg.lambda_vgg
        if "mu" in x:
            losses["KLD"] = kl_loss(x["mu"].float(), x["logvar"].float()) * cfg.lambda_kld
        return losses

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        pred_fake, pred_real = self.discriminate(x["input"], fakes[-1].detach(), _target(x))
        return {
            "D_fake": self.gan_loss(pred_fake, False, for_discriminator=True),
            "D_real": self.gan_loss(pred_real, True, for_discriminator=True),
        }

    def optim_groups(self, train: TrainConfig) -> dict[str, OptimGroup]:
        """TTUR (see :class:`Config`): G and E share one Adam, D has its own."""
        if train.lr_D is None and self.cfg.ttur:
            lr_g, lr_d = train.lr / 2, train.lr * 2
        else:
            lr_g, lr_d = train.lr, train.lr if train.lr_D is None else train.lr_D
        betas = (train.beta1, train.beta2)
        g_params = list(self.G.parameters()) + (list(self.E.parameters()) if self.E is not None else [])
        return {"G": OptimGroup(g_params, lr_g, betas), "D": OptimGroup(list(self.D.parameters()), lr_d, betas)}

    # ---------------------------------------------------------------- inference
    def eval_style(self) -> dict | None:
        return {"seed": 0} if self.E is not None else None

    @torch.no_grad()
    def translate(self, x: dict, style: dict | None = None) -> Translation:
        """Full-resolution output; ``style`` (VAE models only):

        - ``None`` / ``{}``: a random seed is drawn and recorded; ``{"seed": int}``: z from that seed (same seed,
          same image; z is drawn on the CPU, so also across devices);
        - ``{"reference": photo}`` (tensor (3,H,W)/(1,3,H,W) in [-1, 1], PIL image, uint8 array or a file path;
          optional ``"reference_name"``): z = the encoder's mean for that photo.

        The returned ``style`` is ``{"seed": n}`` or ``{"reference": name-or-hash}``. Models without the VAE are
        deterministic: a seed is ignored (style ``{}``), a reference photo is an error.
        """
        style = dict(style or {})
        unknown = set(style) - {"seed", "reference", "reference_name"}
        if unknown:
            raise ConfigError(f"style: unknown key(s) {sorted(unknown)} for SPADE; use 'seed' or 'reference'")
        seg = x["input"]
        if self.E is None:
            if style.get("reference") is not None:
                raise ConfigError(
                    "style: this SPADE model was trained without the VAE style encoder (model.use_vae: false), "
                    "so it cannot take the style of a reference photo"
                )
            img = self.G(seg)
            return Translation(image=img, scales=[img], style={})
        if style.get("reference") is not None:
            ref, name = _reference_tensor(style["reference"], style.get("reference_name"))
            if ref.shape[0] not in (1, seg.shape[0]):
                raise DataError("<reference>", f"{ref.shape[0]} reference photos for a batch of {seg.shape[0]}")
            mu, _ = self.E(ref.to(self.device, seg.dtype))
            z, used = mu.expand(seg.shape[0], -1), {"reference": name}
        else:
            seed = style.get("seed")
            if seed is None:
                seed = secrets.randbelow(2**31)
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ConfigError(f"style: seed must be a non-negative integer, got {seed!r}")
            g = torch.Generator().manual_seed(int(seed))
            z = torch.randn(seg.shape[0], self.cfg.z_dim, generator=g).to(self.device, seg.dtype)
            used = {"seed": int(seed)}
        img = self.G(seg, z)
        return Translation(image=img, scales=[img], style=used)

    def export_module(self) -> nn.Module:
        """Segmap -> image for ONNX export and bench: the generator with spectral norm folded into its weights
        (:meth:`SPADEGenerator.fold_spectral_norm`, same outputs as eval mode, no per-call power-iteration
        arithmetic, a plain-conv graph) and channels-last weights (faster CPU convolutions). VAE models use z = 0
        (the prior's mean style) so the export is deterministic."""
        with torch.no_grad():
            g = self.G.fold_spectral_norm().to(memory_format=torch.channels_last)
        return _ExportG(g, self.cfg.z_dim if self.cfg.use_vae else 0)


class _ExportG(nn.Module):
    def __init__(self, G: SPADEGenerator, z_dim: int):
        super().__init__()
        self.G, self.z_dim = G, z_dim

    def forward(self, inp: Tensor) -> Tensor:
        z = inp.new_zeros(inp.shape[0], self.z_dim) if self.z_dim else None
        return self.G(inp.contiguous(memory_format=torch.channels_last), z)


def official_state_dict(
    netG: dict[str, Tensor], netE: dict[str, Tensor] | None = None, netD: dict[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Official NVlabs/SPADE ``*_net_G.pth`` / ``_net_E.pth`` / ``_net_D.pth`` state dicts -> :class:`SPADE` keys.

    The layouts are the same, so this only adds the ``G.``/``E.``/``D.`` prefixes (dropping a DataParallel
    ``module.`` prefix). Old checkpoints without batch-norm ``num_batches_tracked`` get zeros for it.
    """
    out: dict[str, Tensor] = {}
    for prefix, state in (("G.", netG), ("E.", netE), ("D.", netD)):
        for k, v in (state or {}).items():
            out[prefix + k.removeprefix("module.")] = v
    for k in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(k[: -len("running_mean")] + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return out


def _target(x: dict) -> Tensor:
    if "target" not in x:
        raise DataError("<batch>", "SPADE training needs the target photo", "use a dataset split with photos")
    return x["target"]


def _reference_tensor(ref, name: str | None) -> tuple[Tensor, str]:
    """A reference photo as (1, 3, H, W) in [-1, 1] plus the name recorded with the output."""
    if isinstance(ref, (str, Path)):
        from PIL import Image, UnidentifiedImageError

        path = Path(ref)
        try:
            with Image.open(path) as im:
                ref = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(path, f"cannot read the style reference photo ({err})", "give a PNG or JPEG file") from None
        name = name or path.name
    if not isinstance(ref, Tensor):
        arr = np.asarray(ref)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] < 3:
            raise DataError("<reference>", f"a reference photo must be RGB (H, W, 3), got shape {arr.shape}")
        ref = torch.from_numpy(np.array(arr[..., :3], dtype=np.float32)).permute(2, 0, 1).float() / 127.5 - 1
    ref = ref.float()
    if ref.dim() == 3:
        ref = ref[None]
    if ref.dim() != 4 or ref.shape[1] != 3:
        raise DataError(
            "<reference>", f"a reference photo tensor must be (3, H, W) or (1, 3, H, W), got {tuple(ref.shape)}"
        )
    if name is None:
        name = "sha1:" + hashlib.sha1(ref.detach().cpu().numpy().tobytes()).hexdigest()[:12]
    return ref, name


# ---------------------------------------------------------------------------------------------- presets
_TTUR = {"lr": 1e-4, "lr_D": 4e-4, "beta1": 0.0, "beta2": 0.9, "lr_policy": "linear"}
# Cityscapes 512x256 (official preprocess 'fixed'): 35 labelIds + instance boundary = 36 semantic channels
_CITY = {"layout": "cityscapes", "label_nc": 35, "no_instance": False, "preprocess": "scale_width",
         "load_size": 512, "crop_size": 512}  # fmt: skip
_SQUARE = {"preprocess": "resize_and_crop", "load_size": 286, "crop_size": 256}


def _preset(data: dict, **model) -> dict:
    return {"family": "spade", "data": dict(data), "model": model, "train": dict(_TTUR)}


PRESETS: dict[str, dict] = {
    "spade_cityscapes": _preset(_CITY, aspect_ratio=2.0),  # G: 93,048,003 params (official)
    "spade_cityscapes_vae": _preset(_CITY, aspect_ratio=2.0, use_vae=True),  # G: 126,400,707 params
    # COCO-Stuff: 182 classes + don't-care + instance boundary = 184 channels
    "spade_coco": _preset(
        {"layout": "coco", "label_nc": 182, "contain_dontcare": True, "no_instance": False, **_SQUARE}
    ),
    # ADE20K: 150 classes + don't-care, no instances = 151 channels
    "spade_ade20k": _preset(
        {"layout": "ade20k", "label_nc": 150, "contain_dontcare": True, "no_instance": True, **_SQUARE}
    ),
}
