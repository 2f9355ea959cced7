"""pix2pixHD (Wang et al. 2018): coarse-to-fine generator, multi-scale discriminators, FM + VGG losses, instance
boundary maps and an instance-wise feature encoder whose K-means clusters give diverse styles at inference.

Layer structure and state-dict keys follow the official NVIDIA/pix2pixHD networks (``G.model.<i>``,
``G.model<n>_1/_2``, ``E.model.<i>``): official ``netG``/``netE`` weights load with a ``G.``/``E.`` prefix, ``netD``
through :func:`pixtrans.families.pix2pixhd.official.pix2pixhd_d_keys`.

Widths: ``ngf`` is the width of the *global* generator; local enhancer ``n`` (1 = coarsest) uses ``ngf / 2**n``,
so ``netG: local, ngf: 64`` is the official ``--netG local --ngf 32``, and a stage-1 (global) checkpoint with the
same ``ngf`` initialises stage 2 by name.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from pydantic import NonNegativeInt as NonNegInt
from torch import Tensor, nn

from ...config import DataConfig, TrainConfig
from ...errors import CheckpointError, ConfigError
from ...layers.blocks import InitKind, init_weights
from ...layers.discriminators import MultiScaleDiscriminator, NLayerDiscriminator
from ...layers.instance_pool import instance_means
from ...losses import GANLoss, ReconstructionConfig, feature_matching_loss, reconstruction_loss
from ..base import OptimGroup, Style, StyleSchema, Translation, TranslationModel, round_up
from .networks import Encoder, GlobalGenerator, LocalEnhancer, Padding


class Pix2PixHDConfig(ReconstructionConfig):
    """pix2pixHD model settings (defaults: official code; without VGG the reconstruction term of
    :class:`~pixtrans.losses.ReconstructionConfig` is on)."""

    renamed = {"init": "init_type"}

    netG: Literal["global", "local"] = "global"
    ngf: int = 64  # global generator width; local enhancer n (1 = coarsest) uses ngf / 2**n
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    norm: Literal["instance", "batch", "none"] = "instance"
    padding: Padding = "reflect"
    init_type: InitKind = "normal"
    init_gain: float = 0.02
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


class Pix2PixHDStyle(Style):
    """Styles of a pix2pixHD model with the feature encoder (see :class:`Pix2PixHD`); class and instance ids are
    ints (JSON object keys as strings are accepted)."""

    cluster: int | None = Field(None, ge=0)
    clusters: dict[int, NonNegInt] = {}
    instances: dict[int, NonNegInt] = {}
    features: dict[int, list[float]] = {}
    reference: Any = None
    features_from: Literal["target"] | None = None
    seed: int | None = Field(None, ge=0)


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
    shares_d_pass = True  # one D pass serves G's and D's losses (g_first)
    Style = Pix2PixHDStyle

    def __init__(self, cfg: Pix2PixHDConfig, data: DataConfig, inference: bool = False):
        super().__init__(cfg, data, inference)
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
        if not inference:
            self.D = MultiScaleDiscriminator(
                lambda: NLayerDiscriminator(
                    d_in, cfg.ndf, cfg.n_layers_D, cfg.norm, features=True, variant="pix2pixhd"
                ),
                cfg.num_D,
            )
        for net in (self.G, self.E, self.D):
            if net is not None:
                init_weights(net, cfg.init_type, cfg.init_gain)
        if not inference:
            self.gan_loss = GANLoss(cfg.gan_mode, scale_reduction="sum")  # official: summed over scales
        self.clusters: dict[int, Tensor] = {}  # class id -> (K, feat_num) K-means centres (checkpoint meta)
        self._frozen: bool | None = None

    # ------------------------------------------------------------------ properties
    @property
    def size_multiple(self) -> int:
        c = self.cfg
        m = 2 ** (c.n_downsample_global + (c.n_local_enhancers if c.netG == "local" else 0))
        return max(m, 2**c.n_downsample_E if c.use_features else 1)

    @property
    def min_size(self) -> int:
        """Two multiples (2x2 at the bottleneck) and at least 4 (the 7x7 stem's reflection padding of 3)."""
        return max(4, 2 * self.size_multiple)

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
        style = self.parse_style(style)
        label = x["label"].long()
        used: dict[str, Any] = {}
        if style.reference is not None:
            img, ref_label, ref_inst = _reference(style.reference)
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
        elif style.features_from == "target":
            if "target" not in x:
                raise ConfigError("style.features_from: 'target' needs the target photo (e.g. in `pixtrans test`)")
            return self.encode(x), {"features_from": "target"}
        elif not self.clusters and not style.features and "target" in x:
            return self.encode(x), {"features_from": "target"}  # no clusters yet: the photo's own features
        else:
            vectors = {c: list(v) for c, v in style.features.items()}
            if vectors:
                used["features"] = vectors
            per_class, every = style.clusters, style.cluster
            seed = style.seed or 0
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
        if style.instances:
            used["instances"] = self._paint_instances(feat, label, self._instances(x), style.instances)
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

    def g_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cond, fake = x["input"], fakes[-1]
        pred_fake, pred_real = self.D(torch.cat([cond, fake], 1)), None
        if not self.cfg.no_ganFeat_loss:
            with torch.no_grad():
                pred_real = self.D(torch.cat([cond, x["target"]], 1))
        return self._g_terms(x, fake, pred_fake, pred_real)

    def d_losses(self, x: dict, fakes: list[Tensor]) -> dict[str, Tensor]:
        cond = x["input"]
        pred_fake = self.D(torch.cat([cond, fakes[-1].detach()], 1))
        return self._d_terms(pred_fake, self.D(torch.cat([cond, x["target"]], 1)))

    def gd_losses(self, x: dict, fakes: list[Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        cond, fake = x["input"], fakes[-1]
        pred_fake = self.D(torch.cat([cond, fake], 1))
        pred_real = self.D(torch.cat([cond, x["target"]], 1))
        return self._g_terms(x, fake, pred_fake, pred_real), self._d_terms(pred_fake, pred_real)

    def _g_terms(self, x: dict, fake: Tensor, pred_fake, pred_real) -> dict[str, Tensor]:
        cfg, real = self.cfg, x["target"]
        losses = {"G_GAN": self.gan_loss(pred_fake, True, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            losses["G_GAN_Feat"] = feature_matching_loss(pred_real, pred_fake, weight=cfg.lambda_feat)
        if not cfg.no_vgg_loss:
            losses["G_VGG"] = self.perceptual_loss()(fake, real) * cfg.lambda_vgg
        l1, ss = cfg.rec_weights(vgg_on=not cfg.no_vgg_loss and cfg.lambda_vgg > 0)
        return losses | reconstruction_loss(fake, real, l1, ss, cfg.rec_scales)

    def _d_terms(self, pred_fake, pred_real) -> dict[str, Tensor]:
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

    # ------------------------------------------------------------------ capabilities
    def style_schema(self) -> StyleSchema:
        if self.E is None:
            return StyleSchema()
        clusters = {str(c): int(v.shape[0]) for c, v in self.clusters.items()}
        return StyleSchema(
            kind="clusters" if clusters else "features",
            keys=("cluster", "clusters", "instances", "features", "seed", "reference"),
            clusters=clusters,
            seed=bool(clusters),
            reference=True,
            clusterable=True,
        )

    def encode_reference(self, photo: Tensor, label: Tensor | None = None, inst: Tensor | None = None) -> dict:
        """Per-class mean features of ``photo`` under its layout ``label`` (photo resized to the layout, both to a
        multiple of the encoder's downsampling): ``{"features": {class: vector}}``."""
        if self.E is None:
            return super().encode_reference(photo)
        if label is None:
            raise ConfigError("style.reference: a pix2pixHD style photo needs its label map (its layout)")
        label = label.long().reshape(1, 1, *label.shape[-2:])
        inst = None if inst is None else inst.long().reshape(label.shape)
        m = 2**self.cfg.n_downsample_E
        h, w = round_up(label.shape[-2], m), round_up(label.shape[-1], m)
        photo = F.interpolate(photo.float().reshape(1, 3, *photo.shape[-2:]), size=(h, w), mode="bilinear")
        label, inst = (None if t is None else F.interpolate(t.float(), size=(h, w)).long() for t in (label, inst))
        return {"features": self.encode_style(photo.clamp(-1, 1), label, inst)}

    def feature_map(self, x: dict) -> tuple[Tensor, Tensor]:
        if self.E is None:
            return super().feature_map(x)
        return self.E.model(x["target"]), self._instances(x)

    def set_clusters(self, clusters: dict[int, Tensor]) -> None:
        if self.E is None:
            super().set_clusters(clusters)
        self.clusters = {int(c): torch.as_tensor(v, dtype=torch.float32) for c, v in clusters.items()}

    def export_inputs(self, batch: int, height: int, width: int, gen: torch.Generator) -> dict[str, Tensor]:
        inputs = super().export_inputs(batch, height, width, gen)
        if self.E is not None:
            inputs["feat"] = torch.rand(batch, self.cfg.feat_num, height, width, generator=gen) * 2 - 1
        return inputs

    def export_notes(self) -> dict:
        if self.E is None:
            return {}
        return {
            "style": "'feat' holds the pix2pixHD instance features (feat_num channels, constant over each instance); "
            "feature_clusters gives K-means centres per class id (zeros = neutral style)",
            "feature_clusters": self.meta().get("clusters", {}),
        }

    def generator_inputs(self, x: dict, style: dict | None = None) -> tuple[dict[str, Tensor], dict]:
        """``input`` and, with the feature encoder, ``feat``: the style's feature map (clusters, vectors, a
        reference photo's or the target's features), painted in torch."""
        if self.E is None:
            return super().generator_inputs(x, style)
        feat, used = self.style_features(x, style)
        return {"input": x["input"], "feat": feat.to(x["input"].dtype)}, used

    def inference_module(self) -> nn.Module:
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

    A dataset photo finds its label and instance maps by the layouts' folder rules
    (:func:`pixtrans.data.datasets.reference_maps`: ``<split>_img/`` -> ``<split>_label/``, Cityscapes folders).
    """
    from pathlib import Path

    from ...data.datasets import reference_maps
    from ...data.io import read_instance, read_label, read_rgb, to_tensor_ids, to_tensor_image

    ref = {"image": ref} if isinstance(ref, (str, Path)) else ref
    if not isinstance(ref, dict) or "image" not in ref:
        raise ConfigError("style.reference: expected a photo path or {'image': ..., 'label': ..., 'inst': ...}")
    ref = dict(ref)
    img = ref["image"]
    if isinstance(img, (str, Path)):
        path = Path(img)
        if "label" not in ref:
            ref = {**reference_maps(path), **ref}
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
