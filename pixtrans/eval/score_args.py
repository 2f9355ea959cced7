"""Command-line options of the extra scores (FID, KID, LPIPS, segmentation) shared by ``pixtrans test`` and
``pixtrans compare``; imports no torch, so ``pixtrans --help`` stays fast."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError


def add_score_args(p: argparse.ArgumentParser) -> None:
    """Add ``--fid --kid --lpips --segmenter ...`` to ``p``."""
    g = p.add_argument_group("field-standard scores (weights from files only; see README 'Metrics and their protocol')")
    g.add_argument("--fid", action="store_true", help="FID over the set (FID Inception weights: PIXTRANS_INCEPTION)")
    g.add_argument("--kid", action="store_true", help="KID over the set (same Inception features as --fid)")
    g.add_argument("--inception", default="", metavar="FILE", help="pt_inception-2015-12-05-6726825d.pth")
    g.add_argument("--lpips", action="store_true", help="LPIPS per image (backbone: PIXTRANS_ALEXNET / _VGG16)")
    g.add_argument("--lpips-net", choices=["alex", "vgg", "squeeze"], default="alex")
    g.add_argument("--lpips-backbone", default="", metavar="FILE", help="torchvision alexnet/vgg16/squeezenet1_1 .pth")
    g.add_argument("--lpips-heads", default="", metavar="FILE", help="lpips v0.1 heads (default: torchmetrics' copy)")
    g.add_argument("--segmenter", default="", metavar="FILE", help="ONNX or TorchScript segmenter: mIoU, pixel acc")
    g.add_argument(
        "--seg-input",
        choices=["imagenet", "unit", "minus1_1", "uint8"],
        default="imagenet",
        help="what the segmenter expects (default: [0,1] with ImageNet mean/std)",
    )
    g.add_argument("--seg-ignore", default="255", metavar="IDS", help="comma-separated label ids left out (255)")
    g.add_argument("--seg-label-map", default="", metavar="JSON", help='dataset id -> segmenter id, {"7": 0, ...}')


def score_options(a: argparse.Namespace):
    """The :class:`~pixtrans.eval.scores.ScoreOptions` the parsed arguments ask for (None when none)."""
    if not (a.fid or a.kid or a.lpips or a.segmenter):
        return None
    from .scores import ScoreOptions

    try:
        ignore = tuple(int(v) for v in str(a.seg_ignore).split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--seg-ignore {a.seg_ignore!r}: expected comma-separated integers, e.g. 0,255") from None
    label_map = None
    if a.seg_label_map:
        text = a.seg_label_map
        if not text.lstrip().startswith("{") and Path(text).is_file():
            text = Path(text).read_text()
        try:
            label_map = {int(k): int(v) for k, v in json.loads(text).items()}
        except (ValueError, AttributeError, TypeError):
            raise ConfigError(
                f"--seg-label-map: expected a JSON object (or file) of id -> id, got {text[:60]!r}"
            ) from None
    return ScoreOptions(
        fid=a.fid,
        kid=a.kid,
        lpips=a.lpips,
        lpips_net=a.lpips_net,
        segmenter=a.segmenter or None,
        seg_input=a.seg_input,
        seg_ignore=ignore,
        seg_label_map=label_map,
        inception_weights=a.inception or None,
        lpips_backbone=a.lpips_backbone or None,
        lpips_heads=a.lpips_heads or None,
    )
