"""pix2pixhd named configurations (``pixtrans bench PRESET``)."""

from __future__ import annotations

from typing import Any


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
