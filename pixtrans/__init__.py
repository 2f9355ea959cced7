"""pixtrans: paired image-to-image translation with conditional GANs (pix2pix, pix2pixHD, SPADE, MSG U-Net).

import pixtrans
t = pixtrans.load("runs/synth")
t.translate("label.png").save("photo.png")
"""

from __future__ import annotations

from .version import __version__

__all__ = ["load", "__version__"]


def load(path, device: str = "auto", use_ema: bool = True):
    """Load a run or checkpoint folder; returns a :class:`pixtrans.infer.translator.Translator`."""
    from .infer.translator import load as _load

    return _load(path, device=device, use_ema=use_ema)
