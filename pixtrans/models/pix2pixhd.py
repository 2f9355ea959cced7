"""pix2pixHD (Wang et al. 2018): coarse-to-fine generator, multi-scale discriminators, FM + VGG losses, instance
boundary maps and an instance-wise feature encoder whose K-means clusters give diverse styles at inference.

Layer structure and state-dict keys follow the official NVIDIA/pix2pixHD networks (``G.model.<i>``,
``G.model<n>_1/_2``, ``E.model.<i>``): official ``netG``/``netE`` weights load with a ``G.``/``E.`` prefix, ``netD``
through :func:`pixtrans.models.discriminators.pix2pixhd_d_keys`.

Widths: ``ngf`` is the width of the *global* generator; local enhancer ``n`` (1 = coarsest) uses ``ngf / 2**n``,
so ``netG: local, ngf: 64`` is the official ``--netG local --ngf 32``, and a stage-1 (global) checkpoint with the
same ``ngf`` initialises stage 2 by name.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import model_validator
from torch import Tensor, nn

from ..config import DataConfig, Section, TrainConfig
from ..errors import CheckpointError, ConfigError
from ..losses import GANLoss, feature_matching_loss
from ..nn.blocks import init_weights, norm_layer
from ..nn.instance_pool import instance_mean_pool, instance_means
from .base import OptimGroup, Translation, TranslationModel
from .discriminators import MultiScaleDiscriminator, NLayerDiscriminator

Padding = Literal["reflect", "replicate", "zero"]
STYLE_KEYS = ("cluster", "clusters", "instances", "features", "reference", "features_from", "seed")


# ---------------------------------------------------------------------------------------------------- networks
def _pad(padding: Padding, width: int) -> list[nn.Module]:
    if padding == "reflect":
        return [nn.ReflectionPad2d(width)]
    if padding == "replicate":
        return [nn.ReplicationPad2d(width)]
    if padding == "zero":
        return []
    raise ValueError(f"padding: unknown padding {padding!r}; choose reflect, replicate or zero")


class ResnetBlock(nn.Module):
    """``x + (pad, conv3x3, norm, ReLU, pad, conv3x3, norm)(x)``; keys ``conv_block.<i>`` as official."""

    def __init__(self, dim: int, norm: str = "instance", padding: Padding = "reflect"):
        super().__init__()
        make_norm, p = norm_layer(norm), int(padding == "zero")
        layers = [*_pad(padding, 1), nn.Conv2d(dim, dim, 3, padding=p), make_norm(dim), nn.ReLU(True)]
        layers += [*_pad(padding, 1), nn.Conv2d(dim, dim, 3, padding=p), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_block(x).add_(x)


def _encoder_decoder(
    in_ch: int, out_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str, padding: Padding
) -> list[nn.Module]:
    """7x7 conv, ``n_down`` stride-2 convs, ``n_blocks`` res blocks, ``n_down`` transposed convs, 7x7 conv, tanh."""
    make_norm = norm_layer(norm)
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), make_norm(ngf), nn.ReLU(True)]
    for i in range(n_down):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), make_norm(c * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 2**n_down, norm, padding) for _ in range(n_blocks)]
    for i in range(n_down, 0, -1):
        c = ngf * 2**i
        layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), make_norm(c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return layers


class GlobalGenerator(nn.Module):
    """G1: down-sampling front-end, residual blocks, transposed-conv back-end (``model.<i>`` keys as official)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 3,
        ngf: int = 64,
        n_downsampling: int = 4,
        n_blocks: int = 9,
        norm: str = "instance",
        padding: Padding = "reflect",
    ):
        super().__init__()
        if min(in_ch, out_ch, ngf) < 1 or n_downsampling < 0 or n_blocks < 0:
            raise ValueError("GlobalGenerator: channels must be >= 1, n_downsampling and n_blocks >= 0")
        self.model = nn.Sequential(*_encoder_decoder(in_ch, out_ch, ngf, n_downsampling, n_blocks, norm, padding))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """G = {G1, G2, ...}: the global generator without its output layers (``model``) at the coarsest input scale,
    then per enhancer a front-end ``model<n>_1`` at twice the resolution whose output is summed with the previous
    features and fed to ``model<n>_2`` (res blocks + transposed conv; the last also has the 7x7 output conv).

    ``ngf`` is the width of the finest enhancer (official convention); the global part uses ``ngf * 2**N``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 3,
        ngf: int = 32,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: str = "instance",
        padding: Padding = "reflect",
    ):
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError("LocalEnhancer: n_local_enhancers must be >= 1 (use GlobalGenerator for none)")
        self.n_local_enhancers = n_local_enhancers
        g = _encoder_decoder(
            in_ch, out_ch, ngf * 2**n_local_enhancers, n_downsample_global, n_blocks_global, norm, padding
        )
        self.model = nn.Sequential(*g[:-3])  # without the output conv: keys stay model.<i> as in G1
        make_norm = norm_layer(norm)
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            front = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(in_ch, c, 7),
                make_norm(c),
                nn.ReLU(True),
                nn.Conv2d(c, c * 2, 3, stride=2, padding=1),
                make_norm(c * 2),
                nn.ReLU(True),
            ]
            back = [ResnetBlock(c * 2, norm, padding) for _ in range(n_blocks_local)]
            back += [nn.ConvTranspose2d(c * 2, c, 3, 2, 1, output_padding=1), make_norm(c), nn.ReLU(True)]
            if n == n_local_enhancers:
                back += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
            self.add_module(f"model{n}_1", nn.Sequential(*front))
            self.add_module(f"model{n}_2", nn.Sequential(*back))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            front = getattr(self, f"model{n}_1")(pyramid[self.n_local_enhancers - n])
            out = getattr(self, f"model{n}_2")(front + out)
        return out

    def global_parameters(self) -> list[nn.Parameter]:
        """Everything except the finest enhancer (what ``niter_fix_global`` freezes, as official)."""
        last = f"model{self.n_local_enhancers}_"
        return [p for name, p in self.named_parameters() if not name.startswith(last)]


class Encoder(nn.Module):
    """Feature encoder E: encoder-decoder (no res blocks) then instance-wise average pooling."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 16, n_downsampling: int = 4, norm: str = "instance"):
        super().__init__()
        self.model = nn.Sequential(*_encoder_decoder(in_ch, out_ch, ngf, n_downsampling, 0, norm, "reflect"))

    def forward(self, image: Tensor, inst: Tensor) -> Tensor:
        return instance_mean_pool(self.model(image), inst)


# ---------------------------------------------------------------------------------------------------- family
class Pix2PixHDConfig(Section):
    """pix2pixHD model settings (defaults: official code)."""

    netG: Literal["global", "local"] = "global"
    ngf: int = 64  # global generator width; local enhancer n (1 = coarsest) uses ngf / 2**n
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    norm: Literal["instance", "batch", "none"] = "instance"
    padding: Padding = "reflect"
    init: Literal["normal", "xavier", "kaiming", "orthogonal", "none"] = "normal"
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2  # official default; the paper uses 3
    gan_mode: Literal["lsgan", "vanilla", "hinge"] = "lsgan"
    lambda_feat: float = 10.0
    no_ganFeat_loss: bool = False
    no_vgg_loss: bool = False
    lambda_vgg: float = 10.0
    vgg_weights: str = ""  # VGG19 weights: a file in torchvision's key layout or a URL ("" = torch hub cache)
    use_features: bool = False  # instance-wise feature encoder E (styles from K-means clusters at inference)
    feat_num: int = 3
    nef: int = 16
    n_downsample_E: int = 4
    niter_fix_global: int = 0  # netG local: train only the finest enhancer (and E) for this many steps

    @model_validator(mode="after")
    def _check(self):
        for key in ("ngf", "ndf", "n_layers_D", "num_D", "feat_num", "nef", "n_local_enhancers"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1")
        for key in ("n_downsample_global", "n_blocks_global", "n_blocks_local", "n_downsample_E", "niter_fix_global"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0")
        if self.netG == "local" and self.ngf % 2**self.n_local_enhancers:
            raise ValueError(f"ngf ({self.ngf}) must be divisible by 2**n_local_enhancers for netG local")
        return self


class Pix2PixHD(TranslationModel):
    """pix2pixHD: ``G`` (GlobalGenerator or LocalEnhancer), ``D`` (multi-scale PatchGAN), ``E`` when
    ``use_features``. Style dict for :meth:`translate` (class ids as int or str keys):

    - ``{"cluster": k}`` cluster ``k`` (modulo the class's cluster count) for every class;
    - ``{"clusters": {class: k}}`` per class; ``{"instances": {instance_id: k}}`` per instance;
    - ``{"features": {class: [f1, f2, f3]}}`` explicit feature vectors;
    - ``{"reference": {"image": (1,3,H,W) in [-1,1], "label": (1,1,H,W) ids, "inst": ...}}`` encode a photo
      (``label``/``inst`` default to the input's when the photo shows the same layout);
    - classes left unspecified get a random cluster drawn with ``{"seed": s}`` (default 0);
    - ``{"features_from": "target"}`` encodes ``x['target']`` (the default while no clusters exist, e.g. for
      validation and ``pixtrans test`` before ``pixtrans features``).

    The returned ``Translation.style`` records the clusters (or vectors) used, so passing it back reproduces it.
    """

    family = "pix2pixhd"
    Config = Pix2PixHDConfig

    def __init__(self, cfg: Pix2PixHDConfig, data: DataConfig):
        super().__init__(cfg, data)
        if cfg.use_features and data.label_nc == 0:
            raise ConfigError(
                "model.use_features needs label maps (data.label_nc > 0): features are pooled per instance"
            )
        sem = data.semantic_nc
        g_in = sem + (cfg.feat_num if cfg.use_features else 0)
        if cfg.netG == "global":
            self.G = GlobalGenerator(
                g_in, data.output_nc, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global, cfg.norm, cfg.padding
            )
        else:
            self.G = LocalEnhancer(
                g_in,
                data.output_nc,
                cfg.ngf // 2**cfg.n_local_enhancers,
                cfg.n_downsample_global,
                cfg.n_blocks_global,
                cfg.n_local_enhancers,
                cfg.n_blocks_local,
                cfg.norm,
                cfg.padding,
            )
        self.E = (
            Encoder(data.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.norm) if cfg.use_features else None
        )
        d_in = sem + data.output_nc
        self.D = MultiScaleDiscriminator(
            lambda: NLayerDiscriminator(d_in, cfg.ndf, cfg.n_layers_D, cfg.norm, features=True, variant="pix2pixhd"),
            cfg.num_D,
        )
        for net in (self.G, self.E, self.D):
            if net is not None:
                init_weights(net, cfg.init, 0.02)
        self.gan_loss = GANLoss(cfg.gan_mode, scale_reduction="sum")  # official: summed over scales
        self.vgg_loss: nn.Module | None = None  # built on first use (needs weights; not needed for inference)
        self.clusters: dict[int, Tensor] = {}  # class id -> (K, feat_num) K-means centres (checkpoint meta)
        self._frozen: bool | None = None

    # ------------------------------------------------------------------ properties
    @property
    def size_multiple(self) -> int:
        c = self.cfg
        m = 2 ** (c.n_downsample_global + (c.n_local_enhancers if c.netG == "local" else 0))
        return max(m, 2**c.n_downsample_E if c.use_features else 1)

    # ------------------------------------------------------------------ features
    @staticmethod
    def _instances(x: dict) -> Tensor:
        inst = x.get("inst")
        return x["label"] if inst is None else inst

    def encode(self, x: dict) -> Tensor:
        """E's instance-pooled feature map of ``x['target']`` (training and reference encoding)."""
        return self.E(x["target"], self._instances(x))

    @torch.no_grad()
    def encode_style(self, image: Tensor, label: Tensor, inst: Tensor | None = None) -> dict[int, list[float]]:
        """Per-class mean feature vector of a reference photo (1, 3, H, W) with its label (and instance) map."""
        if self.E is None:
            raise ConfigError("this pix2pixHD model was trained without model.use_features; it has no styles")
        dev = self.device
        image = image.to(dev).float()
        image = image[None] if image.dim() == 3 else image
        label = label.to(dev).long().reshape(image.shape[0], 1, *image.shape[-2:])
        inst = label if inst is None else inst.to(dev).long().reshape(label.shape)
        feat = self.E(image, inst)
        means = instance_means(feat, label)[0]
        return {int(c): [round(float(v), 6) for v in vec] for c, vec in means.items()}

    def style_features(self, x: dict, style: dict | None) -> tuple[Tensor, dict]:
        """The feature map for ``x`` from a style dict (see the class docstring) and the style that reproduces it."""
        style = dict(style or {})
        unknown = set(style) - set(STYLE_KEYS)
        if unknown:
            raise ConfigError(f"style: unknown key(s) {sorted(unknown)}; use {', '.join(STYLE_KEYS)}")
        label = x["label"].long()
        used: dict[str, Any] = {}
        if "reference" in style:
            img, ref_label, ref_inst = _reference(style["reference"])
            if ref_label is None:
                if tuple(img.shape[-2:]) != tuple(label.shape[-2:]):
                    raise ConfigError(
                        f"style.reference: the photo is {tuple(img.shape[-2:])} but the input is "
                        f"{tuple(label.shape[-2:])}; give the photo's own label map as 'label' (files in "
                        "<split>_img/ find theirs in <split>_label/ and <split>_inst/ automatically)"
                    )
                ref_label, ref_inst = label[:1], self._instances(x)[:1]
            vectors = self.encode_style(img, ref_label, ref_inst)
            used["features"] = vectors
        elif style.get("features_from") == "target":
            if "target" not in x:
                raise ConfigError("style.features_from: 'target' needs the target photo (e.g. in `pixtrans test`)")
            return self.encode(x), {"features_from": "target"}
        elif not self.clusters and not style.get("features") and "target" in x:
            return self.encode(x), {"features_from": "target"}  # no clusters yet: the photo's own features
        else:
            vectors = {int(c): list(v) for c, v in (style.get("features") or {}).items()}
            if vectors:
                used["features"] = vectors
            per_class = {int(c): int(k) for c, k in (style.get("clusters") or {}).items()}
            every = style.get("cluster")
            seed = int(style.get("seed", 0))
            gen, drew = torch.Generator().manual_seed(seed), False
            chosen: dict[int, int] = {}
            for c in torch.unique(label).tolist():
                centres = self.clusters.get(c)
                if c in vectors or centres is None:
                    continue
                n = centres.shape[0]
                if c in per_class:
                    k = per_class[c]
                    if not 0 <= k < n:
                        raise ConfigError(f"style.clusters: class {c} has {n} clusters (0..{n - 1}); got {k}")
                elif every is not None:
                    k = int(every) % n
                else:
                    k, drew = int(torch.randint(n, (1,), generator=gen)), True
                chosen[c] = k
                vectors[c] = centres[k].tolist()
            used["clusters"] = chosen
            if drew:
                used["seed"] = seed
        feat = self._paint(label, vectors)
        if style.get("instances"):
            used["instances"] = self._paint_instances(feat, label, self._instances(x), style["instances"])
        return feat, used

    def _paint(self, label: Tensor, vectors: dict[int, list[float]]) -> Tensor:
        n = max(int(label.max()) + 1, max(vectors, default=0) + 1)
        table = torch.zeros(n, self.cfg.feat_num, device=label.device)
        for c, v in vectors.items():
            if len(v) != self.cfg.feat_num:
                raise ConfigError(f"style.features: class {c} needs {self.cfg.feat_num} values, got {len(v)}")
            table[c] = torch.as_tensor(v, dtype=torch.float32)
        return table[label[:, 0]].permute(0, 3, 1, 2).contiguous()

    def _paint_instances(self, feat: Tensor, label: Tensor, inst: Tensor, choice: dict) -> dict[int, int]:
        used = {}
        for i, k in choice.items():
            i, k = int(i), int(k)
            mask = inst[:, 0] == i
            if not bool(mask.any()):
                raise ConfigError(f"style.instances: instance id {i} is not in the instance map")
            c = int(torch.mode(label[:, 0][mask]).values)
            centres = self.clusters.get(c)
            if centres is None or not 0 <= k < centres.shape[0]:
                n = 0 if centres is None else centres.shape[0]
                raise ConfigError(
                    f"style.instances: instance {i} (class {c}) has {n} clusters; got {k}"
                    + ("; run `pixtrans features RUN --data DIR` first" if n == 0 else "")
                )
            feat.permute(0, 2, 3, 1)[mask] = centres[k].to(feat)
            used[i] = k
        return used

    # ------------------------------------------------------------------ training
    def generate(self, x: dict) -> list[Tensor]:
        inp = x["input"]
        if self.E is not None:
            feat = x.get("feat")
            if feat is None:
                feat = self.encode(x)
            inp = torch.cat([inp, feat.to(inp.dtype)], 1)
        return [self.G(inp)]

    def _vgg(self) -> nn.Module:
        if self.vgg_loss is None:
            from ..nn.vgg import VGGLoss

            self.vgg_loss = VGGLoss(self.cfg.vgg_weights).to(self.device)
        return self.vgg_loss

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cfg, fake, real, cond = self.cfg, fakes[-1], x["target"], x["input"]
        pred_fake = self.D(torch.cat([cond, fake], 1))
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            with torch.no_grad():
                pred_real = self.D(torch.cat([cond, real], 1))
            losses["G_GAN_Feat"] = feature_matching_loss(pred_real, pred_fake, weight=cfg.lambda_feat)
        if not cfg.no_vgg_loss:
            losses["G_VGG"] = self._vgg()(fake, real) * cfg.lambda_vgg
        return losses

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cond = x["input"]
        pred_fake = self.D(torch.cat([cond, fakes[-1].detach()], 1))
        pred_real = self.D(torch.cat([cond, x["target"]], 1))
        # official: loss_D = (D_fake + D_real) * 0.5
        return {
            "D_real": 0.5 * self.gan_loss(pred_real, True, for_discriminator=True),
            "D_fake": 0.5 * self.gan_loss(pred_fake, False, for_discriminator=True),
        }

    def optim_groups(self, train: TrainConfig) -> dict[str, OptimGroup]:
        betas = (train.beta1, train.beta2)
        g_params = list(self.G.parameters()) + (list(self.E.parameters()) if self.E is not None else [])
        return {
            "G": OptimGroup(g_params, train.lr, betas),
            "D": OptimGroup(list(self.D.parameters()), train.lr_D or train.lr, betas),
        }

    def on_step(self, step: int, epoch: int) -> None:
        """Progressive training: with ``netG: local`` the global part is frozen while ``step < niter_fix_global``
        (frozen parameters get no gradient, so Adam leaves them untouched), then trained jointly."""
        if self.cfg.netG != "local" or self.cfg.niter_fix_global <= 0:
            return
        frozen = step < self.cfg.niter_fix_global
        if frozen != self._frozen:
            for p in self.G.global_parameters():
                p.requires_grad_(not frozen)
            self._frozen = frozen

    def load_init(self, state: dict[str, Tensor]) -> list[str]:
        """Initialise from a checkpoint: a stage-1 (global) model fills the local model's global part (``G.model.*``
        keep their names), and D/E when their shapes match; ``ema.`` copies are ignored."""
        state = {k: v for k, v in state.items() if not k.startswith("ema.")}
        loaded = super().load_init(state)
        src_g = [k for k in state if k.startswith("G.model.")]
        own_g = [k for k in self.state_dict() if k.startswith("G.model.")]
        if src_g and own_g and not any(k.startswith("G.model.") for k in loaded):
            src_w = state.get("G.model.1.weight")
            raise CheckpointError(
                "train.init_from: the checkpoint's generator does not fit this one "
                f"(its first conv is {tuple(src_w.shape) if src_w is not None else '?'}, "
                f"ours {tuple(self.G.model[1].weight.shape)}); use the same data channels, model.ngf, "
                "n_downsample_global and n_blocks_global as stage 1"
            )
        return loaded

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def translate(self, x: dict, style: dict | None = None) -> Translation:
        inp, used = x["input"], {}
        if self.E is not None:
            feat, used = self.style_features(x, style)
            inp = torch.cat([inp, feat.to(inp.dtype)], 1)
        out = self.G(inp)
        return Translation(image=out, scales=[out], style=used)

    def export_module(self) -> nn.Module:
        """The generator on the prepared input; with ``use_features`` a second input ``feat`` (B, feat_num, H, W)
        is concatenated (zeros when omitted, so the module also runs on the prepared input alone)."""
        return self.G if self.E is None else _WithFeatures(self.G, self.cfg.feat_num)

    def meta(self) -> dict:
        if not self.clusters:
            return {}
        return {"feat_num": self.cfg.feat_num, "clusters": {str(c): v.tolist() for c, v in self.clusters.items()}}

    def load_meta(self, meta: dict) -> None:
        clusters = (meta or {}).get("clusters") or {}
        self.clusters = {
            int(c): torch.as_tensor(v, dtype=torch.float32).reshape(-1, self.cfg.feat_num) for c, v in clusters.items()
        }


class _WithFeatures(nn.Module):
    def __init__(self, G: nn.Module, feat_num: int):
        super().__init__()
        self.G, self.feat_num = G, feat_num

    def forward(self, inp: Tensor, feat: Tensor | None = None) -> Tensor:
        if feat is None:
            feat = inp.new_zeros(inp.shape[0], self.feat_num, *inp.shape[2:])
        return self.G(torch.cat([inp, feat], 1))


def _reference(ref: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """A style reference (a photo path, or a dict of ``image`` / ``label`` / ``inst`` paths or tensors) -> tensors.

    A photo in a ``<split>_img/`` folder finds its label and instance maps in ``<split>_label/`` and ``_inst/``.
    """
    from pathlib import Path

    from ..data.io import read_instance, read_label, read_rgb, to_tensor_ids, to_tensor_image

    ref = {"image": ref} if isinstance(ref, (str, Path)) else ref
    if not isinstance(ref, dict) or "image" not in ref:
        raise ConfigError("style.reference: expected a photo path or {'image': ..., 'label': ..., 'inst': ...}")
    ref = dict(ref)
    img = ref["image"]
    if isinstance(img, (str, Path)):
        path = Path(img)
        if "label" not in ref and path.parent.name.endswith("_img"):
            base = path.parent.name[: -len("_img")]
            for key, folder in (("label", f"{base}_label"), ("inst", f"{base}_inst")):
                found = sorted((path.parent.parent / folder).glob(path.stem + ".png"))
                if found:
                    ref[key] = found[0]
        img = to_tensor_image(read_rgb(path))
    img = torch.as_tensor(img).float()
    img = img[None] if img.dim() == 3 else img

    def ids(v, reader):
        if v is None:
            return None
        t = to_tensor_ids(reader(v)) if isinstance(v, (str, Path)) else torch.as_tensor(v).long()
        return t.reshape(1, 1, *t.shape[-2:])

    label, inst = ids(ref.get("label"), read_label), ids(ref.get("inst"), read_instance)
    for name, t in (("label", label), ("inst", inst)):
        if t is not None and tuple(t.shape[-2:]) != tuple(img.shape[-2:]):
            raise ConfigError(
                f"style.reference: the {name} map {tuple(t.shape[-2:])} and the photo "
                f"{tuple(img.shape[-2:])} differ in size"
            )
    return img, label, inst


def _cityscapes(width: int, netG: str, **model: Any) -> dict:
    return {
        "family": "pix2pixhd",
        "data": {
            "layout": "pix2pixhd",
            "label_nc": 35,
            "no_instance": False,
            "preprocess": "scale_width",
            "load_size": width,
            "crop_size": width,
        },
        "model": {"netG": netG, **model},
    }


PRESETS: dict[str, dict] = {
    # official label2city_512p at our 512x256 (global G, 35 labels + boundary = 36 inputs)
    "pix2pixhd_global": _cityscapes(512, "global"),
    # global + one local enhancer at 1024x512
    "pix2pixhd_local": _cityscapes(1024, "local"),
    # the paper's 2048x1024 setting: local enhancer, 3 discriminator scales
    "pix2pixhd_1024p": _cityscapes(2048, "local", num_D=3),
}
