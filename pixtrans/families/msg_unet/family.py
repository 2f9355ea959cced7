"""MSG U-Net (Laxman et al., the MSG U-Net paper): a U-Net fed the source at every pyramid scale that emits an image
at every scale, one PatchGAN per scale; loss = Σ_k GAN + α Σ_k FM + β Σ_k VGG (α = ``lambda_feat`` = 10,
β = ``lambda_vgg`` = 0.25).

Generator (§2.1): two stride-1 conv blocks at full resolution, then per pyramid scale a stride-2 conv block whose
output is concatenated with the source resized to that scale and merged by a 1x1 conv block; below the coarsest
pyramid scale ``n_extra_down`` plain stride-2 blocks reach the bottleneck (8x4 at 2048x1024 with the defaults).
The decoder mirrors it with transposed-conv blocks, each joined with its encoder skip and followed by a stride-1
conv block; every pyramid scale has a 1x1 conv + tanh RGB branch (as MSG-GAN). Conv blocks are conv-norm-LeakyReLU(0.2).

Departures from the paper, all configuration: 3x3 instead of 4x4 stride-1 kernels (symmetric padding),
instance norm by default (the paper's BatchNorm is ``norm: batch``; with batch size 1 its running statistics make
eval-mode outputs differ from training ones) and widths, which the paper does not give: ``ngf`` 16 at full
resolution doubling per level up to ``max_ch`` 512, which makes the model several times cheaper than pix2pixHD's
global generator + local enhancer at the same output size (see benchmarks/efficiency.py).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import model_validator
from torch import Tensor, nn

from ...config import DataConfig
from ...layers.blocks import InitKind, NormKind, init_weights
from ...layers.discriminators import NLayerDiscriminator
from ...losses import GANLoss, ReconstructionConfig, feature_matching_loss, reconstruction_loss
from ..base import TranslationModel
from .networks import VGG_MIN_SIZE, MSGUNetGenerator, Upsample, pyramid


class MSGUNetConfig(ReconstructionConfig):
    """MSG U-Net settings: generator shape, per-scale PatchGANs and the loss weights of the paper's eq. (1); without
    VGG the reconstruction term of :class:`~pixtrans.losses.ReconstructionConfig` is on, averaged over the output
    scales (each scale's L1 over ``rec_scales`` pyramid levels of its own)."""

    renamed = {"init": "init_type", "alpha": "lambda_feat", "beta": "lambda_vgg"}

    ngf: int = 16  # full-resolution width; doubles per level up to max_ch
    max_ch: int = 512
    n_scales: int = 5  # pyramid scales with a source input and an output (2048x1024 ... 128x64 in the paper)
    n_extra_down: int = 4  # plain U-Net levels below the coarsest scale (128x64 -> 8x4 in the paper)
    norm: NormKind = "instance"
    skip: Literal["add", "cat"] = "add"  # how decoder levels join their encoder skip (the paper adds)
    init_type: InitKind = "normal"
    init_gain: float = 0.02
    intermediate_outputs: bool = True  # False: only the full-resolution output and its D (gradient study)
    upsample: Upsample = "transposed"  # decoder 2x: the paper's transposed conv, or resize (nearest + 3x3 conv)
    ndf: int = 64
    n_layers_D: int = 3
    norm_D: NormKind = "instance"
    gan_mode: Literal["lsgan", "vanilla", "hinge"] = "lsgan"
    lambda_feat: float = 10.0  # discriminator feature matching weight (the paper's α)
    lambda_vgg: float = 0.25  # VGG19 perceptual loss weight (the paper's β)
    no_vgg_loss: bool = False
    vgg_weights: str = ""  # VGG19 weights file or URL ("" = PIXTRANS_VGG19 or the torch hub cache)

    @model_validator(mode="after")
    def _check(self):
        for key in ("ngf", "n_scales", "ndf", "n_layers_D"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1")
        if self.n_extra_down < 0:
            raise ValueError("n_extra_down must be >= 0")
        if self.n_scales + self.n_extra_down < 2:
            raise ValueError("n_scales + n_extra_down must be >= 2 (at least one downsampling)")
        if self.max_ch < self.ngf:
            raise ValueError(f"max_ch ({self.max_ch}) must be >= ngf ({self.ngf})")
        if self.lambda_feat < 0 or self.lambda_vgg < 0:
            raise ValueError("lambda_feat and lambda_vgg are loss weights and must be >= 0")
        return self


class MSGUNet(TranslationModel):
    """MSG U-Net: ``G`` (:class:`MSGUNetGenerator`) and ``D`` (one pix2pixHD-style PatchGAN per output scale,
    each fed ``cat(source at that scale, image at that scale)``). :meth:`generate` returns every scale, coarse to
    fine; ``translate(...).image`` is full resolution and ``.scales`` holds all of them."""

    family = "msg_unet"
    Config = MSGUNetConfig
    shares_d_pass = True  # one D pass serves G's and D's losses (g_first)
    multi_scale = True

    def __init__(self, cfg: MSGUNetConfig, data: DataConfig, inference: bool = False):
        super().__init__(cfg, data, inference)
        sem = data.semantic_nc
        self.G = MSGUNetGenerator(
            sem,
            data.output_nc,
            cfg.ngf,
            cfg.n_scales,
            cfg.n_extra_down,
            cfg.max_ch,
            cfg.norm,
            cfg.skip,
            cfg.intermediate_outputs,
            cfg.upsample,
        )
        init_weights(self.G, cfg.init_type, cfg.init_gain)
        if inference:
            return
        n_d = cfg.n_scales if cfg.intermediate_outputs else 1
        self.D = nn.ModuleList(
            NLayerDiscriminator(
                sem + data.output_nc, cfg.ndf, cfg.n_layers_D, cfg.norm_D, features=True, variant="pix2pixhd"
            )
            for _ in range(n_d)
        )
        init_weights(self.D, cfg.init_type, cfg.init_gain)
        self.gan_loss = GANLoss(cfg.gan_mode, scale_reduction="sum")

    @property
    def size_multiple(self) -> int:
        return self.G.size_multiple

    @property
    def n_outputs(self) -> int:
        """Images the generator emits (one per scale, or only full resolution); also without the discriminators
        (a model built for inference)."""
        return self.cfg.n_scales if self.cfg.intermediate_outputs else 1

    def scales(self, t: Tensor) -> list[Tensor]:
        """``t`` (source or target) at the output scales, coarse to fine, as the discriminators see it."""
        return pyramid(t, self.cfg.n_scales)[-self.n_outputs :]

    # ------------------------------------------------------------------ training
    def generate(self, x: dict) -> list[Tensor]:
        return self.G(x["input"])

    def discriminate(self, sources: list[Tensor], images: list[Tensor]) -> list[list[Tensor]]:
        """Per scale, D_k's features (last = prediction) of ``cat(source_k, image_k)``."""
        if len(images) != self.n_outputs:
            raise ValueError(f"MSG U-Net: expected {self.n_outputs} images (one per scale), got {len(images)}")
        return [d(torch.cat([s, im.to(s.dtype)], 1)) for d, s, im in zip(self.D, sources, images, strict=True)]

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        sources, reals = self.scales(x["input"]), self.scales(x["target"])
        pred_fake, pred_real = self.discriminate(sources, fakes), None
        if self.cfg.lambda_feat > 0:
            with torch.no_grad():
                pred_real = self.discriminate(sources, reals)
        return self._g_terms(fakes, reals, pred_fake, pred_real)

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        sources, reals = self.scales(x["input"]), self.scales(x["target"])
        pred_fake = self.discriminate(sources, [f.detach() for f in fakes])
        return self._d_terms(pred_fake, self.discriminate(sources, reals))

    def gd_losses(self, x: dict, fakes: list[Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        sources, reals = self.scales(x["input"]), self.scales(x["target"])
        pred_fake, pred_real = self.discriminate(sources, fakes), self.discriminate(sources, reals)
        return self._g_terms(fakes, reals, pred_fake, pred_real), self._d_terms(pred_fake, pred_real)

    def _g_terms(self, fakes: list[Tensor], reals: list[Tensor], pred_fake, pred_real) -> dict[str, Tensor]:
        cfg = self.cfg
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if cfg.lambda_feat > 0:
            # Σ_k Σ_i mean |D_k^i(real) - D_k^i(fake)|: per scale, unweighted layers (eq. 1)
            fm = [feature_matching_loss(r, f, weight=1.0, layer_weight=1.0) for r, f in zip(pred_real, pred_fake)]
            losses["G_FM"] = cfg.lambda_feat * torch.stack(fm).sum()
        if cfg.lambda_vgg > 0 and not cfg.no_vgg_loss:
            vgg = self.perceptual_loss(layer_weights=(1.0,) * 5)  # the paper's eq. (1)
            terms = [vgg(f, r) for f, r in zip(fakes, reals) if min(f.shape[-2:]) >= VGG_MIN_SIZE]
            if terms:
                losses["G_VGG"] = cfg.lambda_vgg * torch.stack(terms).sum()
        l1, ss = cfg.rec_weights(vgg_on=not cfg.no_vgg_loss and cfg.lambda_vgg > 0)
        per_scale = [reconstruction_loss(f, r, l1, ss, cfg.rec_scales) for f, r in zip(fakes, reals)]
        for key in per_scale[0]:
            losses[key] = torch.stack([t[key] for t in per_scale]).mean()
        return losses

    def _d_terms(self, pred_fake, pred_real) -> dict[str, Tensor]:
        # summed over scales; 0.5 * (real + fake) as pix2pixHD, whose D and loss this reuses
        return {
            "D_real": 0.5 * self.gan_loss(pred_real, True, for_discriminator=True),
            "D_fake": 0.5 * self.gan_loss(pred_fake, False, for_discriminator=True),
        }

    # ------------------------------------------------------------------ inference
    def inference_module(self) -> nn.Module:
        """The generator returning its full-resolution output (the coarse branches cost < 1% of the FLOPs)."""
        return FullResolution(self.G)

    def generator_module(self) -> nn.Module:
        """The generator with every output scale (``translate(..., all_scales=True)`` on any runtime)."""
        return _AllScales(self.G).eval()


class _AllScales(nn.Module):
    def __init__(self, G: MSGUNetGenerator):
        super().__init__()
        self.G = G

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.G(x))


class FullResolution(nn.Module):
    """The generator's full-resolution output only (export and bench): ``forward(input) -> image``."""

    def __init__(self, G: MSGUNetGenerator):
        super().__init__()
        self.G = G

    def forward(self, x: Tensor) -> Tensor:
        return self.G(x)[-1]
