"""spade named configurations (``pixtrans bench PRESET``)."""

from __future__ import annotations

_TTUR = {"lr": 1e-4, "lr_D": 4e-4, "beta1": 0.0, "beta2": 0.9, "lr_policy": "linear"}
# Cityscapes 512x256 (official preprocess 'fixed'): 35 labelIds + instance boundary = 36 semantic channels
_CITY = {"layout": "cityscapes", "label_nc": 35, "no_instance": False, "preprocess": "scale_width",
         "load_size": 512, "crop_size": 512}  # fmt: skip
_SQUARE = {"preprocess": "resize_and_crop", "load_size": 286, "crop_size": 256}


def _preset(data: dict, **model) -> dict:
    return {"family": "spade", "data": dict(data), "model": model, "train": dict(_TTUR)}


PRESETS: dict[str, dict] = {
    "spade_cityscapes": _preset(_CITY, aspect_ratio=2.0),  # G: 93,048,003 params (official)
    "spade_cityscapes_vae": _preset(_CITY, aspect_ratio=2.0, use_vae=True),  # G: 126,400,707 params
    # COCO-Stuff: 182 classes + don't-care + instance boundary = 184 channels
    "spade_coco": _preset(
        {"layout": "coco", "label_nc": 182, "contain_dontcare": True, "no_instance": False, **_SQUARE}
    ),
    # ADE20K: 150 classes + don't-care, no instances = 151 channels
    "spade_ade20k": _preset(
        {"layout": "ade20k", "label_nc": 150, "contain_dontcare": True, "no_instance": True, **_SQUARE}
    ),
}
