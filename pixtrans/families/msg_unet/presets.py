"""msg_unet named configurations (``pixtrans bench PRESET``)."""

from __future__ import annotations


def _preset(data: dict, **model) -> dict:
    return {"family": "msg_unet", "data": data, "model": model}


# Cityscapes-style input: 35 labels + instance boundary = 36 channels, as pix2pixhd_local.
_CITYSCAPES = {
    "layout": "cityscapes",
    "label_nc": 35,
    "no_instance": False,
    "preprocess": "scale_width",
    "load_size": 2048,
    "crop_size": 2048,
}
PRESETS: dict[str, dict] = {
    # the paper's 5-scale setting: outputs 128x64 ... 2048x1024, bottleneck 8x4
    "msg_unet": _preset(_CITYSCAPES, n_scales=5, n_extra_down=4),
    # the paper's 4-scale setting for 512x512 (NYU, maps): outputs 64 ... 512, bottleneck 4x4
    "msg_unet_4scale": _preset(
        {**_CITYSCAPES, "preprocess": "resize_and_crop", "load_size": 512, "crop_size": 512}, n_scales=4, n_extra_down=4
    ),
}
