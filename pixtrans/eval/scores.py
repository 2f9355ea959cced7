"""Field-standard scores beyond PSNR/SSIM/VIF: FID, KID, LPIPS and the segmentation score (mIoU, pixel accuracy).

Every network comes from a file (see :mod:`pixtrans.layers.inception`, :mod:`pixtrans.layers.lpips`, and a
user-supplied ONNX / TorchScript segmenter); a missing file is a one-line :class:`WeightsMissingError` that says how
to provide it. :class:`SetScorer` loads what was asked for up front (so a missing file fails before any translation),
takes batches as ``pixtrans test`` translates them and summarises; :data:`PROTOCOL` says how each number is made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import CheckpointError, ConfigError, PixtransError, WeightsMissingError

# How each number in metrics.json is made (copied into its "protocol" entry for the metrics present).
PROTOCOL: dict[str, dict] = {
    "psnr": {
        "aggregate": "mean of per-image values",
        "range": "dB, higher is better; inf (null) for an exact copy",
        "how": "torchmetrics PSNR on [0, 1] (data_range 1), MSE over C, H, W of each image",
    },
    "psnr_set": {
        "aggregate": "whole set",
        "range": "dB, higher is better",
        "how": "10·log10(1 / MSE) with the MSE averaged over all images first (each image weighted equally); "
        "what tools that pool the error before the log report",
    },
    "ssim": {
        "aggregate": "mean of per-image values",
        "range": "[-1, 1], higher is better",
        "how": "torchmetrics SSIM, Gaussian window 11 / sigma 1.5, data_range 1, on [0, 1]",
    },
    "vif": {
        "aggregate": "mean of per-image values",
        "range": "[0, ~1] (can exceed 1 for contrast-enhanced images), higher is better",
        "how": "pixel-domain VIF-P (torchmetrics) on the 0-255 scale its noise variance sigma_n_sq=2 is defined for "
        "(as sewar, piq and the MATLAB reference); on [0, 1] the same images score differently",
    },
    "lpips": {
        "aggregate": "mean of per-image values",
        "range": "[0, ~1], lower is better; 0 for identical images",
        "how": "LPIPS v0.1 (linear heads of the lpips package) on an ImageNet backbone, inputs in [-1, 1]",
    },
    "fid": {
        "aggregate": "whole set (Gaussians fitted to all outputs vs all targets)",
        "range": ">= 0, lower is better; ~0 for identical sets; biased upwards for small sets (n << 2048)",
        "how": "FID Inception-v3 pool3 (2048-d) features (TF 2015-12-05 weights, pt_inception-2015-12-05-6726825d), "
        "8-bit images resized to 299 with TF1 bilinear, torchmetrics FrechetInceptionDistance",
    },
    "kid": {
        "aggregate": "whole set (mean ± std over random subsets)",
        "range": ">= 0 (can be slightly negative: unbiased estimator), lower is better",
        "how": "same Inception features as FID; torchmetrics KernelInceptionDistance, cubic polynomial kernel, "
        "100 subsets of min(1000, n) images",
    },
    "miou": {
        "aggregate": "whole set (one confusion matrix over every pixel of every image)",
        "range": "[0, 1], higher is better",
        "how": "the user's segmenter run on each translated image, argmax vs the input label map; IoU per class "
        "over classes present in labels or predictions, ignored ids left out (pix2pixHD / SPADE protocol)",
    },
    "pixel_acc": {
        "aggregate": "whole set (same confusion matrix)",
        "range": "[0, 1], higher is better",
        "how": "correctly labelled pixels / all non-ignored pixels",
    },
    "mean_class_acc": {
        "aggregate": "whole set (same confusion matrix)",
        "range": "[0, 1], higher is better",
        "how": "per-class recall (correct / labelled pixels of the class), averaged over classes in the labels",
    },
}


def protocol_for(keys) -> dict[str, dict]:
    """The :data:`PROTOCOL` entries for the metric names in ``keys`` (in that order)."""
    return {k: PROTOCOL[k] for k in keys if k in PROTOCOL}


def psnr_of_mean_mse(psnrs: Sequence[float]) -> float:
    """Whole-set PSNR (data range 1) from per-image PSNRs: the MSEs are averaged before the log."""
    vals = [v for v in psnrs if not math.isnan(v)]
    if not vals:
        return math.nan
    mse = sum(10 ** (-v / 10) for v in vals) / len(vals)
    return math.inf if mse == 0 else -10 * math.log10(mse)


def to_uint8(x: Tensor) -> Tensor:
    """(N, C, H, W) images in [-1, 1] -> (N, 3, H, W) uint8, as they would be saved (grey repeated to RGB)."""
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _rgb(x: Tensor) -> Tensor:
    x = x.detach().float().cpu()
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# ---------------------------------------------------------------------------- FID / KID
class _Passthrough(nn.Module):
    """Hands precomputed features to torchmetrics (which then counts them as images), so FID and KID share one
    Inception pass."""

    def __init__(self, n: int):
        super().__init__()
        self.num_features = n

    def forward(self, f: Tensor) -> Tensor:
        return f


class DistributionScores:
    """FID and/or KID between all outputs and all targets from one feature extractor (by default the FID
    Inception; any module mapping (N, 3, H, W) uint8 images to (N, D) features for tests or other backbones)."""

    def __init__(
        self, fid: bool = True, kid: bool = False, extractor: nn.Module | None = None, weights=None, device="cpu"
    ):
        if extractor is None:
            from ..layers.inception import load_fid_inception

            extractor = load_fid_inception(weights)
        self.device = torch.device(device)
        self.extractor = extractor.eval().to(self.device)
        self.fid, self.kid = fid, kid
        self.real: list[Tensor] = []
        self.fake: list[Tensor] = []

    @torch.no_grad()
    def update(self, fake: Tensor, real: Tensor) -> None:
        """Add a batch of outputs and their targets (images in [-1, 1])."""
        dev = self.device
        self.add_features(self.extractor(to_uint8(fake).to(dev)), self.extractor(to_uint8(real).to(dev)))

    def add_features(self, fake: Tensor, real: Tensor) -> None:
        """Add (N, D) features computed elsewhere (the extractor's output for outputs and targets)."""
        self.fake.append(fake.detach().double().cpu())
        self.real.append(real.detach().double().cpu())

    def compute(self) -> dict[str, float]:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        out: dict[str, float] = {}
        if not self.real:
            return out
        real, fake = torch.cat(self.real), torch.cat(self.fake)
        n = min(len(real), len(fake))
        dim = real.shape[1]
        if self.fid:
            if n < 2:
                out["fid"] = math.nan
            else:
                m = FrechetInceptionDistance(feature=_Passthrough(dim))
                m.update(real, real=True)
                m.update(fake, real=False)
                out["fid"] = max(0.0, float(m.compute()))  # tiny negative values are round-off
        if self.kid:
            if n < 2:
                out["kid"], out["kid_std"] = math.nan, math.nan
            else:
                m = KernelInceptionDistance(feature=_Passthrough(dim), subsets=100, subset_size=min(1000, n))
                m.update(real, real=True)
                m.update(fake, real=False)
                with torch.random.fork_rng():
                    torch.manual_seed(0)  # the subsets are random: fixed for repeatable numbers
                    mean, std = m.compute()
                out["kid"], out["kid_std"] = float(mean), float(std)
        return out


# ---------------------------------------------------------------------------- segmentation
SEG_INPUTS = ("imagenet", "unit", "minus1_1", "uint8")
_IMAGENET_MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)


def _seg_input(x: Tensor, kind: str) -> Tensor:
    x = _rgb(x).clamp(-1, 1)
    if kind == "minus1_1":
        return x
    unit = (x + 1) / 2
    if kind == "unit":
        return unit
    if kind == "uint8":
        return (unit * 255).round()
    return (unit - _IMAGENET_MEAN) / _IMAGENET_STD


def _to_ids(out, size: tuple[int, int]) -> Tensor:
    """A segmenter's output -> (N, H, W) int64 class ids at ``size``: (N, K, h, w) float scores are resized
    bilinearly then argmaxed; (N, h, w) / (N, 1, h, w) integer ids are resized nearest."""
    if isinstance(out, Mapping):
        out = out.get("out", next(iter(out.values())))
    if isinstance(out, list | tuple):
        out = out[0]
    out = torch.as_tensor(np.asarray(out)) if not isinstance(out, Tensor) else out
    if out.is_floating_point() and out.dim() == 4:
        if tuple(out.shape[-2:]) != size:
            out = F.interpolate(out.float(), size=size, mode="bilinear", align_corners=False)
        return out.argmax(1).long()
    if out.is_floating_point():
        raise PixtransError(
            f"segmenter output of shape {tuple(out.shape)}: expected (N, K, H, W) scores or (N, H, W) ids"
        )
    if out.dim() == 4:
        out = out[:, 0]
    if out.dim() != 3:
        raise PixtransError(
            f"segmenter output of shape {tuple(out.shape)}: expected (N, K, H, W) scores or (N, H, W) ids"
        )
    if tuple(out.shape[-2:]) != size:
        out = F.interpolate(out[:, None].float(), size=size, mode="nearest")[:, 0]
    return out.long()


def load_segmenter(path: str | Path, input_kind: str = "imagenet") -> Callable[[Tensor], Tensor]:
    """A segmenter from an ONNX file (onnxruntime, CPU) or a TorchScript file (``torch.jit.save``).

    The returned function maps (N, C, H, W) images in [-1, 1] to (N, H, W) int64 class ids. ``input_kind`` is what
    the network expects: ``imagenet`` ([0, 1] then ImageNet mean/std, most segmenters), ``unit`` ([0, 1]),
    ``minus1_1`` or ``uint8`` (0-255 floats). Its class ids must be the dataset's label ids (or remap them with
    ``label_map`` of :class:`SegmentationScore`)."""
    path = Path(path).expanduser()
    if input_kind not in SEG_INPUTS:
        raise ConfigError(f"segmenter input must be one of {', '.join(SEG_INPUTS)}, got {input_kind!r}")
    if not path.is_file():
        raise WeightsMissingError(
            f"segmenter file {path} does not exist: give an ONNX (.onnx) or TorchScript (.pt) segmentation network "
            f"whose class ids are the dataset's label ids"
        )
    if path.suffix.lower() == ".onnx":
        try:
            import onnxruntime as ort
        except ModuleNotFoundError:
            raise PixtransError('an ONNX segmenter needs onnxruntime: pip install "pixtrans[export]"') from None
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise CheckpointError(f"{path}: onnxruntime cannot load it ({type(err).__name__}: {err})") from None
        name = sess.get_inputs()[0].name

        def run_onnx(x: Tensor) -> Tensor:
            inp = _seg_input(x, input_kind).numpy().astype(np.float32)
            return _to_ids(sess.run(None, {name: inp}), tuple(x.shape[-2:]))

        return run_onnx
    try:
        net = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as err:  # not a TorchScript archive
        raise CheckpointError(
            f"{path}: not a TorchScript file ({type(err).__name__}: {err}) — save the segmenter with "
            f"torch.jit.save(torch.jit.script(net) or torch.jit.trace(net, x), path), or export it to .onnx"
        ) from None

    @torch.no_grad()
    def run_script(x: Tensor) -> Tensor:
        return _to_ids(net(_seg_input(x, input_kind)), tuple(x.shape[-2:]))

    return run_script


class SegmentationScore:
    """Confusion matrix of predicted vs label ids over a whole set; mIoU, pixel and mean class accuracy.

    ``ignore`` ids (default 255, don't care) are left out; ``label_map`` maps dataset label ids to the segmenter's
    class ids first (ids it does not list are ignored), e.g. Cityscapes ids -> train ids. The matrix grows to the
    largest id seen."""

    def __init__(self, ignore: Sequence[int] = (255,), label_map: Mapping[int, int] | None = None):
        self.ignore = {int(i) for i in ignore}
        self.label_map = {int(k): int(v) for k, v in label_map.items()} if label_map else None
        self.matrix = np.zeros((0, 0), dtype=np.int64)  # rows: label, columns: prediction

    def _map(self, label: np.ndarray) -> np.ndarray:
        if self.label_map is None:
            return label
        out = np.full_like(label, -1)
        for k, v in self.label_map.items():
            out[label == k] = v
        return out

    def update(self, pred: Tensor | np.ndarray, label: Tensor | np.ndarray) -> None:
        """Add (N, H, W) (or (N, 1, H, W)) predicted and label ids of one batch."""
        p = np.asarray(pred.cpu() if isinstance(pred, Tensor) else pred).reshape(-1).astype(np.int64)
        t = self._map(np.asarray(label.cpu() if isinstance(label, Tensor) else label).reshape(-1).astype(np.int64))
        if p.shape != t.shape:
            raise ValueError(f"prediction and label sizes differ: {p.size} vs {t.size} pixels")
        keep = (t >= 0) & ~np.isin(t, list(self.ignore))
        p, t = p[keep], t[keep]
        p = np.where(p < 0, 0, p)
        k = int(max(self.matrix.shape[0], t.max(initial=-1) + 1, p.max(initial=-1) + 1))
        if k > self.matrix.shape[0]:
            grown = np.zeros((k, k), dtype=np.int64)
            grown[: self.matrix.shape[0], : self.matrix.shape[1]] = self.matrix
            self.matrix = grown
        self.matrix += np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def compute(self) -> dict:
        """``miou``, ``pixel_acc``, ``mean_class_acc``, ``iou_per_class`` (None where a class never occurs) and
        ``pixels`` (non-ignored pixels scored)."""
        m = self.matrix.astype(np.float64)
        total = m.sum()
        if total == 0:
            return {
                "miou": math.nan,
                "pixel_acc": math.nan,
                "mean_class_acc": math.nan,
                "iou_per_class": [],
                "pixels": 0,
            }
        tp = np.diag(m)
        union = m.sum(0) + m.sum(1) - tp
        iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
        gt = m.sum(1)
        acc = np.where(gt > 0, tp / np.maximum(gt, 1), np.nan)
        return {
            "miou": float(np.nanmean(iou)),
            "pixel_acc": float(tp.sum() / total),
            "mean_class_acc": float(np.nanmean(acc)),
            "iou_per_class": [None if math.isnan(v) else round(float(v), 6) for v in iou],
            "pixels": int(total),
        }


# ---------------------------------------------------------------------------- everything for one test run
@dataclass
class ScoreOptions:
    """Which extra scores ``pixtrans test`` / ``compare`` compute, and where their weights come from."""

    fid: bool = False
    kid: bool = False
    lpips: bool = False
    lpips_net: str = "alex"
    segmenter: str | None = None
    seg_input: str = "imagenet"
    seg_ignore: tuple[int, ...] = (255,)
    seg_label_map: dict[int, int] | None = None
    inception_weights: str | None = None
    lpips_backbone: str | None = None
    lpips_heads: str | None = None
    extractor: nn.Module | None = field(default=None, repr=False)  # tests: stand-in for the Inception

    @property
    def any(self) -> bool:
        return bool(self.fid or self.kid or self.lpips or self.segmenter)


class SetScorer:
    """Loads the networks ``opts`` asks for (missing weights fail here, before any translation), scores batches
    and summarises. ``update`` returns the per-image values (LPIPS) for the per-image table. The Inception and
    LPIPS networks run on ``device`` (the translator's); the segmenter on the CPU."""

    def __init__(self, opts: ScoreOptions, label_model: bool = True, device="cpu"):
        self.opts = opts
        self.device = torch.device(device)
        self.dist = (
            DistributionScores(opts.fid, opts.kid, opts.extractor, opts.inception_weights, device=self.device)
            if opts.fid or opts.kid
            else None
        )
        self.lpips = None
        if opts.lpips:
            from ..layers.lpips import load_lpips

            self.lpips = load_lpips(opts.lpips_net, opts.lpips_backbone, opts.lpips_heads).to(self.device)
        self.segment = self.seg = None
        if opts.segmenter:
            if not label_model:
                raise ConfigError("--segmenter scores outputs against input label maps: this model's input is an image")
            self.segment = load_segmenter(opts.segmenter, opts.seg_input)
            self.seg = SegmentationScore(opts.seg_ignore, opts.seg_label_map)
        self.lpips_values: list[float] = []

    @torch.no_grad()
    def update(self, fake: Tensor, real: Tensor | None, label: Tensor | None = None) -> dict[str, list[float]]:
        per: dict[str, list[float]] = {}
        if real is not None and self.dist is not None:
            self.dist.update(fake, real)
        if real is not None and self.lpips is not None:
            pair = (_rgb(t).clamp(-1, 1).to(self.device) for t in (fake, real))
            vals = self.lpips(*pair).tolist()
            self.lpips_values += vals
            per["lpips"] = vals
        if self.seg is not None and label is not None:
            self.seg.update(self.segment(fake.detach().float().cpu()), label)
        return per

    def summary(self) -> dict:
        """Means / set values and a ``weights`` entry naming the files used."""
        out: dict = {}
        weights: dict[str, str] = {}
        if self.lpips is not None:
            good = [v for v in self.lpips_values if not math.isnan(v)]
            out["lpips"] = sum(good) / len(good) if good else math.nan
            weights["lpips"] = f"{self.opts.lpips_net}: {self.lpips.source['backbone']} + {self.lpips.source['heads']}"
        if self.dist is not None:
            out.update(self.dist.compute())
            if self.opts.extractor is not None:
                src = getattr(self.opts.extractor, "source", None)
                weights["inception"] = str(src) if src else f"custom extractor {type(self.opts.extractor).__name__}"
            else:
                from ..layers.inception import find_fid_inception_weights

                weights["inception"] = find_fid_inception_weights(self.opts.inception_weights)
        if self.seg is not None:
            res = self.seg.compute()
            out.update(miou=res["miou"], pixel_acc=res["pixel_acc"], mean_class_acc=res["mean_class_acc"])
            out["segmentation"] = {"iou_per_class": res["iou_per_class"], "pixels": res["pixels"]}
            weights["segmenter"] = f"{self.opts.segmenter} (input {self.opts.seg_input})"
        if weights:
            out["weights"] = weights
        return out


def json_safe_tree(value):
    """``value`` with every NaN / inf float (at any depth of dicts and lists) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe_tree(v) for v in value]
    return value
