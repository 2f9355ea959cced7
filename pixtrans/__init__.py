"""pixtrans: paired image-to-image translation with conditional GANs (pix2pix, pix2pixHD, SPADE, MSG U-Net).

import pixtrans
t = pixtrans.load("runs/synth")
t.translate("label.png").save("photo.png")
"""

from __future__ import annotations

from .version import __version__

__all__ = ["load", "__version__"]


def load(path, device: str = "auto", use_ema: bool = True, runtime: str | None = None, precision: str = "auto"):
    """Load a run or checkpoint folder; returns a :class:`pixtrans.infer.translator.Translator`.

    ``runtime``: ``"auto"`` (the fastest path verified against torch fp32 on this machine), ``"torch"``,
    ``"onnxruntime"`` or ``"openvino"``; None (default) runs the torch fp32 reference. ``precision``: ``"fp32"``,
    ``"bf16"``, ``"fp16"`` or ``"auto"`` (fp32 for a named runtime; any verified precision for ``"auto"``).
    ``Translator.runtime_info`` says what was chosen."""
    from .infer.translator import load as _load

    return _load(path, device=device, use_ema=use_ema, runtime=runtime, precision=precision)
