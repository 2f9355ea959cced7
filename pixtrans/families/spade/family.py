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
from typing import Any

import numpy as np
import torch
from pydantic import Field, StrictInt, model_validator
from torch import Tensor, nn

from ...config import DataConfig, TrainConfig
from ...errors import ConfigError, DataError
from ...layers.blocks import InitKind, init_weights
from ...layers.discriminators import MultiScaleDiscriminator
from ...layers.spade import ParamFreeNorm
from ...losses import GANLoss, GanMode, ReconstructionConfig, feature_matching_loss, kl_loss, reconstruction_loss
from ..base import OptimGroup, Style, StyleSchema, Translation, TranslationModel
from .networks import ConvEncoder, DNorm, SPADEGenerator, SPADENLayerDiscriminator, UpLayers, reparameterize


class SPADEConfig(ReconstructionConfig):
    """SPADE model settings (defaults: the official Cityscapes/COCO recipe; without VGG the reconstruction term of
    :class:`~pixtrans.losses.ReconstructionConfig` is on)."""

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


class SPADEStyle(Style):
    """``seed`` (z drawn from it on the CPU: same seed, same image on any device) or ``reference`` (a photo:
    tensor, PIL image, uint8 array or file path; z = the encoder's mean code), ``reference_name`` recorded with it."""

    seed: StrictInt | None = Field(None, ge=0)
    reference: Any = None
    reference_name: str | None = None


class SPADE(TranslationModel):
    """The SPADE family: ``G`` (:class:`SPADEGenerator`), ``D`` (multi-scale :class:`SPADENLayerDiscriminator`
    on ``cat(semantics, image)``), ``E`` (:class:`ConvEncoder`, only with ``use_vae``).

    Losses (weighted): G_GAN (hinge), G_GAN_Feat (λ_feat, SPADE weighting), G_VGG (λ_vgg), KLD (λ_kld);
    D_real, D_fake (hinge).
    """

    family = "spade"
    Config = SPADEConfig
    Style = SPADEStyle

    def __init__(self, cfg: SPADEConfig, data: DataConfig, inference: bool = False):
        super().__init__(cfg, data, inference)
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
        if not inference:
            make_d = partial(SPADENLayerDiscriminator, d_in, cfg.ndf, cfg.n_layers_D, cfg.norm_D, cfg.spectral_D)
            self.D = MultiScaleDiscriminator(make_d, cfg.num_D)
        self.E = ConvEncoder(cfg.ngf, cfg.z_dim, data.output_nc) if cfg.use_vae else None
        for net in (self.G, self.D, self.E):
            if net is not None:
                init_weights(net, cfg.init_type, cfg.init_gain)
        if not inference:
            self.gan_loss = GANLoss(cfg.gan_mode)

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

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cfg, fake, real = self.cfg, fakes[-1], _target(x)
        pred_fake, pred_real = self.discriminate(x["input"], fake, real)
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            losses["G_GAN_Feat"] = feature_matching_loss(pred_real, pred_fake, cfg.lambda_feat, layer_weight=1.0)
        if not cfg.no_vgg_loss:
            losses["G_VGG"] = self.perceptual_loss()(fake, real) * cfg.lambda_vgg
        l1, ss = cfg.rec_weights(vgg_on=not cfg.no_vgg_loss and cfg.lambda_vgg > 0)
        losses |= reconstruction_loss(fake, real, l1, ss, cfg.rec_scales)
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
        """TTUR (see :class:`SPADEConfig`): G and E share one Adam, D has its own."""
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
        inputs, used = self.generator_inputs(x, style)
        img = self.G(*inputs.values())
        return Translation(image=img, scales=[img], style=used)

    def generator_inputs(self, x: dict, style: dict | None = None) -> tuple[dict[str, Tensor], dict]:
        """``input`` (the segmentation map) and, with the VAE, ``z`` (B, z_dim) from the style (see
        :meth:`translate`): drawn from the seed on the CPU or the encoder's mean for a reference photo."""
        style = self.parse_style(style)
        seg = x["input"]
        if self.E is None:
            if style.reference is not None:
                raise ConfigError(
                    "style: this SPADE model was trained without the VAE style encoder (model.use_vae: false), "
                    "so it cannot take the style of a reference photo"
                )
            return {"input": seg}, {}
        if style.reference is not None:
            ref, name = _reference_tensor(style.reference, style.reference_name)
            if ref.shape[0] not in (1, seg.shape[0]):
                raise DataError("<reference>", f"{ref.shape[0]} reference photos for a batch of {seg.shape[0]}")
            mu, _ = self.E(ref.to(self.device, seg.dtype))
            z, used = mu.expand(seg.shape[0], -1), {"reference": name}
        else:
            seed = secrets.randbelow(2**31) if style.seed is None else style.seed
            g = torch.Generator().manual_seed(int(seed))
            z = torch.randn(seg.shape[0], self.cfg.z_dim, generator=g).to(self.device, seg.dtype)
            used = {"seed": int(seed)}
        return {"input": seg, "z": z}, used

    def generator_module(self) -> nn.Module:
        """:meth:`inference_module`'s folded, channels-last generator taking ``z`` too with the VAE."""
        with torch.no_grad():
            g = self.G.fold_spectral_norm().to(memory_format=torch.channels_last)
        return _RuntimeG(g).eval()

    # ---------------------------------------------------------------- capabilities
    def style_schema(self) -> StyleSchema:
        if self.E is None:  # deterministic; a seed is accepted and ignored
            return StyleSchema(kind="none", keys=("seed",))
        return StyleSchema(kind="seed", keys=("seed", "reference"), seed=True, reference=True)

    def encode_reference(self, photo: Tensor, label: Tensor | None = None, inst: Tensor | None = None) -> dict:
        """The photo itself: :meth:`translate` encodes it to the VAE's mean code (any size; layout not needed)."""
        if self.E is None:
            return super().encode_reference(photo)
        return {"reference": photo}

    @property
    def aspect_ratio(self) -> float:
        return float(self.cfg.aspect_ratio)

    def export_size(self) -> tuple[int, int]:
        if self.cfg.use_vae:  # the z -> map layer is sized for the training crop
            return self.G.sw * self.size_multiple, self.G.sh * self.size_multiple
        return super().export_size()

    @property
    def export_dynamic(self) -> bool:
        return not self.cfg.use_vae

    def export_notes(self) -> dict:
        if not self.cfg.use_vae:
            return {}
        return {"style": "the VAE's z is fixed to 0 (the prior's mean style); seeded styles need pixtrans itself"}

    def inference_module(self) -> nn.Module:
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


class _RuntimeG(nn.Module):
    def __init__(self, G: SPADEGenerator):
        super().__init__()
        self.G = G

    def forward(self, inp: Tensor, z: Tensor | None = None) -> tuple[Tensor]:
        return (self.G(inp.contiguous(memory_format=torch.channels_last), z),)


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
