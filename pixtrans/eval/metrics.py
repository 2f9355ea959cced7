"""Full-reference image metrics: PSNR, SSIM and VIF (pixel-domain VIF-P), per image and averaged.

Conventions (so numbers compare with the papers' tables):

- images come in as (B, C, H, W) tensors in [-1, 1] and are clamped and mapped to [0, 1];
- PSNR: torchmetrics, ``data_range=1`` on [0, 1], per image (MSE over C, H, W); identical images give ``inf``;
- SSIM: torchmetrics, Gaussian window 11 / sigma 1.5, ``data_range=1``; needs H, W > 5, else NaN;
- VIF: torchmetrics ``visual_information_fidelity`` on the 0-255 scale its noise variance ``sigma_n_sq=2`` is
  defined for (as in sewar/piq and the MATLAB reference); it needs H, W >= 41: smaller images give NaN
  (no upsampling: that would change what is measured) and a note in :attr:`MetricAccumulator.notes`.
"""

from __future__ import annotations

import math

from torch import Tensor

METRICS = ("psnr", "ssim", "vif")
SSIM_MIN_SIZE = 6
VIF_MIN_SIZE = 41


def _to_unit(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() not in (3, 4):
        raise ValueError(f"{name}: expected a (B, C, H, W) or (C, H, W) image tensor in [-1, 1]")
    x = x.detach().float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    return ((x.clamp(-1, 1) + 1) / 2).cpu()


def per_image_metrics(fake: Tensor, real: Tensor) -> dict[str, list[float]]:
    """PSNR, SSIM and VIF of every image of a batch: ``{'psnr': [...], 'ssim': [...], 'vif': [...]}``."""
    from torchmetrics.functional.image import (  # imported here: it pulls in scipy, slow to load for the CLI
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
        visual_information_fidelity,
    )

    p, t = _to_unit(fake, "fake"), _to_unit(real, "real")
    if p.shape != t.shape:
        raise ValueError(f"fake and real must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}")
    b, _, h, w = p.shape
    nan = [math.nan] * b
    out = {"psnr": peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3)).tolist()}
    if min(h, w) >= SSIM_MIN_SIZE:
        out["ssim"] = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none").view(-1).tolist()
    else:
        out["ssim"] = nan
    if min(h, w) >= VIF_MIN_SIZE:
        out["vif"] = visual_information_fidelity(p * 255, t * 255, reduction="none").view(-1).tolist()
    else:
        out["vif"] = nan
    return out


def image_metrics(fake: Tensor, real: Tensor) -> dict[str, float]:
    """Batch means of PSNR, SSIM and VIF for images in [-1, 1] (NaN where the size does not allow a metric)."""
    per = per_image_metrics(fake, real)
    return {k: _mean(v) for k, v in per.items()}


def _mean(values: list[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    return sum(good) / len(good) if good else math.nan


def size_notes(height: int, width: int) -> list[str]:
    """Why a metric is NaN for images of this size (empty when all metrics apply)."""
    notes = []
    if min(height, width) < VIF_MIN_SIZE:
        notes.append(f"vif needs images of at least {VIF_MIN_SIZE}x{VIF_MIN_SIZE} px; got {width}x{height}: NaN")
    if min(height, width) < SSIM_MIN_SIZE:
        notes.append(f"ssim needs images of at least {SSIM_MIN_SIZE}x{SSIM_MIN_SIZE} px; got {width}x{height}: NaN")
    return notes


class MetricAccumulator:
    """Collects per-image metrics over batches; :meth:`compute` gives the means over images and ``n``."""

    def __init__(self):
        self.values: dict[str, list[float]] = {k: [] for k in METRICS}
        self.names: list[str] = []
        self.notes: list[str] = []

    @property
    def n(self) -> int:
        return len(self.values["psnr"])

    def update(self, fake: Tensor, real: Tensor, names: list[str] | None = None) -> dict[str, list[float]]:
        """Add a batch; returns its per-image values (for the report / the web studio)."""
        per = per_image_metrics(fake, real)
        start = self.n
        for k in METRICS:
            self.values[k].extend(per[k])
        count = len(per["psnr"])
        if names is not None and len(names) != count:
            raise ValueError(f"got {len(names)} names for a batch of {count} images")
        self.names.extend(list(names) if names is not None else [str(start + i) for i in range(count)])
        for note in size_notes(*fake.shape[-2:]):
            if note not in self.notes:
                self.notes.append(note)
        return per

    def compute(self) -> dict[str, float]:
        """Means over all images (NaN values skipped) plus ``n``."""
        out: dict[str, float] = {k: _mean(v) for k, v in self.values.items()}
        out["n"] = self.n
        return out

    def per_image(self) -> list[dict]:
        """One ``{'name', 'psnr', 'ssim', 'vif'}`` dict per image, in update order."""
        return [{"name": name, **{k: self.values[k][i] for k in METRICS}} for i, name in enumerate(self.names)]

    def summary(self) -> dict:
        """JSON-safe :meth:`compute` (non-finite values become ``None``) with ``notes`` when there are any."""
        out = json_safe(self.compute())
        if any(math.isinf(v) for v in self.values["psnr"]):
            out.setdefault("notes", []).append("some outputs equal their targets exactly: psnr is infinite (null)")
        if self.notes:
            out.setdefault("notes", []).extend(self.notes)
        return out


def json_safe(d: dict) -> dict:
    """Copy of ``d`` with NaN/inf floats replaced by ``None`` (strict JSON has neither)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
