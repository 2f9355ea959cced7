"""pix2pix named configurations (``pixtrans bench PRESET``)."""

from __future__ import annotations


def _preset(netG: str, crop: int, **model) -> dict:
    return {
        "family": "pix2pix",
        "data": {"label_nc": 0, "input_nc": 3, "crop_size": crop},
        "model": {"netG": netG, **model},
    }


PRESETS: dict[str, dict] = {
    "unet_256": _preset("unet", 256, num_downs=8),
    "unet_128": _preset("unet", 128, num_downs=7),
    "resnet_9blocks": _preset("resnet", 256, n_blocks=9),
    "resnet_6blocks": _preset("resnet", 256, n_blocks=6),
}
