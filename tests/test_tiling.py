"""Exact tiled inference (pixtrans.infer.tiling): tiles reproduce the untiled output for every family, odd sizes,
several tiles; the input is encoded per tile; each tiled operation equals torch's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixtrans.config import config_from_dict
from pixtrans.families import build_model
from pixtrans.infer.tiling import Big, _Stored, translate_tiled
from pixtrans.infer.translator import Translator

D = {"label_nc": 5, "no_instance": False, "crop_size": 64}
CASES = {
    "pix2pixhd_global": (
        {"family": "pix2pixhd", "data": D, "model": {"ngf": 8, "n_downsample_global": 3, "n_blocks_global": 2}},
        None,
    ),  # fmt: skip
    "pix2pixhd_local": (
        {
            "family": "pix2pixhd",
            "data": D,
            "model": {"netG": "local", "ngf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1},
        },
        None,
    ),  # fmt: skip
    "pix2pixhd_features": (
        {
            "family": "pix2pixhd",
            "data": D,
            "model": {
                "ngf": 8,
                "n_downsample_global": 2,
                "n_blocks_global": 1,
                "use_features": True,
                "nef": 4,
                "n_downsample_E": 2,
            },
        },
        {"features": {c: [0.3 * c, -0.2, 0.1] for c in range(5)}},
    ),  # fmt: skip
    "spade_instance": (
        {"family": "spade", "data": D, "model": {"ngf": 2, "spade_nhidden": 4, "param_free_norm": "instance"}},
        None,
    ),  # fmt: skip
    "spade_vae_batch": (
        {
            "family": "spade",
            "data": {**D, "contain_dontcare": True},
            "model": {"ngf": 2, "spade_nhidden": 4, "param_free_norm": "sync_batch", "use_vae": True, "z_dim": 4},
        },
        {"seed": 3},
    ),  # fmt: skip
    "pix2pix_unet": (
        {"family": "pix2pix", "data": {**D, "no_instance": True}, "model": {"num_downs": 5, "ngf": 4}},
        None,
    ),  # fmt: skip
    "pix2pix_resnet": (
        {
            "family": "pix2pix",
            "data": {"label_nc": 0, "input_nc": 3},
            "model": {"netG": "resnet", "ngf": 4, "n_blocks": 1, "norm": "instance"},
        },
        None,
    ),  # fmt: skip
    "msg_unet": (
        {"family": "msg_unet", "data": D, "model": {"ngf": 4, "n_scales": 3, "n_extra_down": 1, "max_ch": 8}},
        None,
    ),  # fmt: skip
}


def _model(raw: dict):
    torch.manual_seed(0)
    cfg = config_from_dict(raw)
    return build_model(cfg, inference=True).eval(), cfg


def _batch(cfg, h: int, w: int) -> dict:
    g = torch.Generator().manual_seed(1)
    if cfg.data.label_nc == 0:
        return {"input": torch.rand(1, 3, h, w, generator=g) * 2 - 1}
    coarse = torch.randint(0, cfg.data.label_nc, (1, 1, h // 6 + 1, w // 6 + 1), generator=g)
    ids = F.interpolate(coarse.float(), scale_factor=6, mode="nearest").long()[..., :h, :w]
    if cfg.data.contain_dontcare:
        ids[..., :5, :7] = 255
    return {"input": ids, "inst": ids * 10 + (torch.arange(w) > w // 3).long()}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


@pytest.mark.parametrize("case", list(CASES))
def test_tiled_equals_untiled(case):
    raw, style = CASES[case]
    model, cfg = _model(raw)
    h, w = 53, 77  # odd: padded to the size multiple, cropped back; tile 32 -> several tiles at every level
    batch = _batch(cfg, h, w)
    t = Translator(model, cfg, {})
    ref = t.translate_tensor(model.prepare(dict(batch)), style)
    out = translate_tiled(model, model.prepare(dict(batch), encode=False), style, 32)
    assert out.image.shape == ref.image.shape == (1, 3, h, w)
    assert psnr(out.image, ref.image) >= 45 and float((out.image - ref.image).abs().max()) < 1e-4
    assert [s.shape for s in out.scales] == [s.shape for s in ref.scales]
    for a, b in zip(out.scales, ref.scales, strict=True):
        assert float((a - b).abs().max()) < 1e-4
    assert out.style == ref.style


def test_paper_test_mode_batch_norm_uses_whole_image_statistics():
    """pix2pix's paper protocol normalises with the test image's own batch statistics: over the whole image, not per
    tile; running statistics come back unchanged."""
    model = {"num_downs": 5, "ngf": 4, "dropout": False}
    raw = {"family": "pix2pix", "data": {**D, "no_instance": True}, "model": model}
    model, cfg = _model(raw)
    model.cfg.eval_mode = False
    bn = next(m for m in model.G.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    batch = _batch(cfg, 64, 96)
    ref = model.translate(model.prepare(dict(batch)))
    out = translate_tiled(model, model.prepare(dict(batch), encode=False), None, 32)
    assert float((out.image - ref.image).abs().max()) < 1e-4
    assert torch.equal(bn.running_mean, before)


def test_input_is_encoded_tile_by_tile_and_the_translator_tiles():
    model, cfg = _model(CASES["pix2pixhd_global"][0])
    seen = []
    encode = model.encode_input

    def spy(x):
        seen.append(tuple(x["label"].shape[-2:]))
        return encode(x)

    model.encode_input = spy
    ids = _batch(cfg, 64, 80)["input"][0, 0].numpy()
    t = Translator(model, cfg, {})
    tiled = np.asarray(t.translate(ids, tile=32), dtype=np.int16)
    # tiles plus the first conv's halo (7x7) and the boundary map's (1): never the whole one-hot map
    assert seen and max(a * b for a, b in seen) <= (32 + 6 + 2) ** 2 < 64 * 80
    whole = np.asarray(t.translate(ids), dtype=np.int16)
    assert np.abs(tiled - whole).max() <= 1  # 8-bit rounding of equal floats


def _big(t: torch.Tensor, tile: int = 5) -> Big:
    return Big(_Stored(t), tile)


@pytest.mark.parametrize(
    "op",
    [
        lambda x: F.conv2d(x, torch.ones(2, 3, 3, 3) / 27, torch.ones(2), stride=2, padding=1),
        lambda x: F.conv2d(x, torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0)), dilation=2),
        lambda x: nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect")(x),
        lambda x: nn.Conv2d(3, 2, 4, 2, 1)(x),
        lambda x: nn.Conv2d(3, 2, 3, padding="same")(x),
        lambda x: nn.ConvTranspose2d(3, 2, 3, 2, 1, output_padding=1)(x),
        lambda x: nn.ConvTranspose2d(3, 2, 4, 2, 1)(x),
        lambda x: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(x),
        lambda x: F.avg_pool2d(x, 2),
        lambda x: F.pad(x, (3, 2, 1, 3), mode="reflect"),
        lambda x: F.pad(x, (2, 2, 2, 2), mode="replicate"),
        lambda x: F.interpolate(x, size=(5, 7), mode="nearest"),
        lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"),
        lambda x: nn.InstanceNorm2d(3)(x) * 2 - 1,
        lambda x: torch.cat([F.leaky_relu(x, 0.2), torch.tanh(x)], 1)[..., 1:8, 2:9],
    ],
)
def test_each_tiled_operation_equals_torch(op):
    x = torch.randn(2, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.manual_seed(0)  # the same module weights for both calls
        want = op(x)
        torch.manual_seed(0)
        got = op(_big(x))
    got = got.materialize() if isinstance(got, Big) else got
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_unknown_operations_run_whole_with_a_warning():
    x = torch.randn(1, 2, 12, 12)
    with pytest.warns(UserWarning, match="interpolate runs on the whole feature map"):
        got = F.interpolate(_big(x), scale_factor=2.0, mode="bilinear")
    got = got.materialize() if isinstance(got, Big) else got
    torch.testing.assert_close(got, F.interpolate(x, scale_factor=2.0, mode="bilinear"))
