"""Tiny and thin inputs (1x1, 3x200, 64x8, ...) translate with every family at every entry point: the translator pads
to the network's :attr:`~pixtrans.families.base.TranslationModel.min_size` and multiple, then crops back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixtrans.checkpoints import save_checkpoint
from pixtrans.config import load_config
from pixtrans.families import build_model
from pixtrans.infer.translator import Translator, load

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.ngf=8", "model.ndf=8"]
FAMILIES = {
    "pix2pix": ("pix2pix_synth.yaml", [*TINY, "model.num_downs=5", "model.norm=instance"]),
    "pix2pix_resnet": ("pix2pix_synth.yaml", [*TINY, "model.netG=resnet", "model.n_blocks=1", "model.norm=instance"]),
    "pix2pix_photo": ("pix2pix_synth.yaml", [*TINY, "model.num_downs=5", "data.label_nc=0", "data.layout=paired"]),
    "pix2pixhd": (
        "pix2pixhd_synth.yaml",
        [*TINY, "model.n_blocks_global=1", "model.n_downsample_global=2", "model.n_downsample_E=2", "model.nef=8"],
    ),
    "pix2pixhd_local": ("pix2pixhd_synth_local.yaml", [*TINY, "model.n_blocks_global=1", "model.nef=8"]),
    "spade": ("spade_synth.yaml", [*TINY, "model.spade_nhidden=16"]),
    "spade_vae": ("spade_synth_vae.yaml", [*TINY, "model.spade_nhidden=16", "model.z_dim=16"]),
    "msg_unet": ("msg_unet_synth.yaml", TINY),
}
SIZES = [(1, 1), (2, 2), (3, 200), (200, 3), (8, 8), (16, 16), (64, 8), (8, 64)]


def _cfg(name: str, extra: list[str] = ()):
    config, overrides = FAMILIES[name]
    return load_config(ROOT / "configs" / config, [*overrides, *extra])


@pytest.fixture(scope="module")
def translators() -> dict[str, Translator]:
    out = {}
    for name in FAMILIES:
        cfg = _cfg(name)
        torch.manual_seed(0)
        out[name] = Translator(build_model(cfg, inference=True), cfg, {})
    return out


def _input(t: Translator, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if t.is_label_model:
        return torch.randint(0, t.data.label_nc, (1, h, w), generator=g)
    return torch.rand(t.data.input_nc, h, w, generator=g) * 2 - 1


def test_min_size_is_a_multiple_that_covers_the_network(translators):
    for name, t in translators.items():
        m, lo = t.model.size_multiple, t.model.min_size
        assert lo >= 1 and t.model.padded_size(1, 1) == (max(m, -(-lo // m) * m),) * 2, name
        assert t.model.padded_size(3 * m + 1, m) == (4 * m, max(m, -(-lo // m) * m)), name


@pytest.mark.parametrize("name", list(FAMILIES))
def test_named_degenerate_sizes_translate_to_the_input_size(translators, name):
    t = translators[name]
    for w, h in SIZES:
        res = t.translate_tensor(t._batch(_input(t, h, w), None), t.model.eval_style())
        assert tuple(res.image.shape[-2:]) == (h, w), (name, w, h)
        assert torch.isfinite(res.image).all()
        for s in res.scales:
            assert s.shape[-2] <= h and s.shape[-1] <= w


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_any_size_translates_whole_or_tiled(translators, name):
    t = translators[name]

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(h=st.integers(1, 48), w=st.integers(1, 48), tile=st.sampled_from([0, 16, 32]))
    def check(h, w, tile):
        g = np.random.default_rng(h * 100 + w)
        if t.is_label_model:
            arr = g.integers(0, t.data.label_nc, (h, w)).astype(np.uint8)
        else:
            arr = g.integers(0, 256, (h, w, 3)).astype(np.uint8)
        out = t.translate(arr, style=t.model.eval_style(), tile=tile)
        assert out.size == (w, h)
        assert np.isfinite(np.asarray(out, dtype=np.float32)).all()

    check()


def test_tiled_thin_input_matches_the_whole_translation(translators):
    t = translators["spade"]
    arr = np.random.default_rng(0).integers(0, t.data.label_nc, (3, 100)).astype(np.uint8)
    whole = np.asarray(t.translate(arr), dtype=np.int16)
    tiled = np.asarray(t.translate(arr, tile=32), dtype=np.int16)
    assert whole.shape == tiled.shape == (3, 100, 3)
    assert np.abs(whole - tiled).max() <= 1


@pytest.mark.slow
def test_load_translate_of_tiny_files(tmp_path):
    """``pixtrans.load(...).translate`` of a 1x1 and a 3x40 PNG label map (the CLI's path)."""
    cfg = _cfg("spade", [f"data.root={tmp_path}"])
    torch.manual_seed(0)
    model = build_model(cfg, inference=True)
    save_checkpoint(tmp_path / "run", 1, cfg, model.checkpoint_state(), {"family_meta": model.meta()})
    t = load(tmp_path / "run", device="cpu")
    for w, h in [(1, 1), (40, 3)]:
        path = tmp_path / f"{w}x{h}.png"
        Image.fromarray(np.ones((h, w), np.uint8)).save(path)
        assert t.translate(path).size == (w, h)
        assert t.translate(path, tile=16).size == (w, h)
