"""The slim inference path: ``pixtrans.load`` builds the generator side only and reads only its tensors; the
slim exported folder loads the same way; styles are typed and validated by the family (capability API)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import pixtrans
from pixtrans.checkpoints import WEIGHTS, save_checkpoint
from pixtrans.config import config_from_dict
from pixtrans.errors import ConfigError
from pixtrans.families import build_model
from pixtrans.infer.export import export_pixtrans
from pixtrans.registry import presets

LABELS = {"label_nc": 8, "no_instance": False, "crop_size": 32, "load_size": 32}
TINY = {
    "pix2pix": {"family": "pix2pix", "data": {"crop_size": 32}, "model": {"ngf": 8, "ndf": 8, "num_downs": 5}},
    "pix2pixhd": {"family": "pix2pixhd", "data": LABELS,
                  "model": {"ngf": 8, "ndf": 8, "nef": 8, "n_blocks_global": 1, "n_downsample_global": 2,
                            "use_features": True, "n_downsample_E": 2, "no_vgg_loss": True}},
    "spade": {"family": "spade", "data": LABELS,
              "model": {"ngf": 8, "ndf": 8, "z_dim": 8, "spade_nhidden": 8, "use_vae": True, "no_vgg_loss": True}},
    "msg_unet": {"family": "msg_unet", "data": LABELS,
                 "model": {"ngf": 8, "n_scales": 3, "n_extra_down": 1, "no_vgg_loss": True}},
}  # fmt: skip


def _checkpoint(tmp_path, raw: dict, ema: bool = True):
    cfg = config_from_dict(raw)
    torch.manual_seed(0)
    model = build_model(cfg)
    weights = model.checkpoint_state()
    if ema:  # an EMA copy that differs from the raw generator
        g = model.G.state_dict()
        weights |= {"ema." + k: v + 0.01 if v.is_floating_point() else v.clone() for k, v in g.items()}
    return save_checkpoint(tmp_path / "run", 1, cfg, weights, {"class_names": []}), model


@pytest.mark.parametrize("family", list(TINY))
def test_load_builds_no_discriminator_and_uses_the_ema_generator(tmp_path, family):
    ck, full = _checkpoint(tmp_path, TINY[family])
    t = pixtrans.load(ck, device="cpu")
    names = [n for n, _ in t.model.named_modules()]
    assert not any(n == "D" or n.startswith("D.") for n in names) and t.model.D is None
    assert not any("loss" in n for n in names)
    saved = load_file(str(ck / WEIGHTS))
    assert all(torch.equal(v, saved["ema." + k]) for k, v in t.model.G.state_dict().items())
    raw = pixtrans.load(ck, device="cpu", use_ema=False)
    assert all(torch.equal(v, saved["G." + k]) for k, v in raw.model.G.state_dict().items())


def test_pix2pixhd_local_preset_loads_no_discriminator_tensor(tmp_path, monkeypatch):
    raw = presets()["pix2pixhd_local"]
    raw = {**raw, "model": {**raw["model"], "ngf": 8, "n_blocks_global": 1, "n_blocks_local": 1, "ndf": 8}}
    ck, _ = _checkpoint(tmp_path, raw, ema=False)
    import pixtrans.checkpoints as C

    read = []
    real = C.read_weights

    def spy(ck, want):
        out = real(ck, want)
        read.extend(out)
        return out

    monkeypatch.setattr("pixtrans.infer.translator.read_weights", spy)
    t = pixtrans.load(ck, device="cpu")
    assert read and not any(k.startswith("D.") for k in read)
    assert {type(m).__name__ for m in t.model.modules()}.isdisjoint({"MultiScaleDiscriminator", "NLayerDiscriminator"})
    assert any(k.startswith("D.") for k in load_file(str(ck / WEIGHTS)))  # the checkpoint does hold D


@pytest.mark.parametrize("family", list(TINY))
def test_slim_export_folder_translates_like_the_checkpoint(tmp_path, family):
    ck, _ = _checkpoint(tmp_path, TINY[family])
    res = export_pixtrans(ck, tmp_path / "slim")
    assert res["megabytes"] < res["source_megabytes"]
    slim = load_file(str(tmp_path / "slim" / WEIGHTS))
    assert not any(k.startswith(("D.", "ema.")) for k in slim)
    a, b = pixtrans.load(ck, device="cpu"), pixtrans.load(tmp_path / "slim", device="cpu")
    ids = torch.randint(0, 8, (32, 32)).numpy() if a.is_label_model else (torch.rand(32, 32, 3) * 255).byte().numpy()
    style = {"seed": 3} if family == "spade" else None
    assert a.translate(ids, style=style).tobytes() == b.translate(ids, style=style).tobytes()
    meta = json.loads((tmp_path / "slim" / "meta.json").read_text())
    assert meta["inference_only"] and meta["source"]["step"] == 1


def test_styles_are_typed_and_validated_by_the_family(tmp_path):
    hd = pixtrans.load(_checkpoint(tmp_path / "hd", TINY["pix2pixhd"])[0], device="cpu").model
    style = hd.parse_style({"clusters": {"3": 1}, "seed": 2})
    assert style.clusters == {3: 1} and style.seed == 2
    with pytest.raises(ConfigError, match="colour: unknown key"):
        hd.parse_style({"colour": 1})
    with pytest.raises(ConfigError, match="seed"):
        hd.parse_style({"seed": -1})
    schema = hd.style_schema()
    assert schema.kind == "features" and schema.clusterable and "reference" in schema.keys
    sp = pixtrans.load(_checkpoint(tmp_path / "sp", TINY["spade"])[0], device="cpu").model
    assert sp.style_schema().kind == "seed" and sp.parse_style({"seed": 5}).seed == 5
    with pytest.raises(ConfigError, match="seed"):
        sp.parse_style({"seed": True})
    p2p = pixtrans.load(_checkpoint(tmp_path / "p2p", TINY["pix2pix"])[0], device="cpu").model
    assert p2p.style_schema().kind == "none"
    with pytest.raises(ConfigError, match="takes no style"):
        p2p.parse_style({"seed": 1})
    with pytest.raises(ConfigError, match="takes no style"):
        p2p.encode_reference(torch.zeros(1, 3, 32, 32))


def test_encode_reference_gives_a_style_the_translator_reproduces(tmp_path):
    t = pixtrans.load(_checkpoint(tmp_path, TINY["pix2pixhd"])[0], device="cpu")
    label = torch.randint(0, 8, (1, 1, 30, 30))
    style = t.model.encode_reference(torch.rand(1, 3, 60, 60) * 2 - 1, label)
    assert set(style) == {"features"} and all(len(v) == 3 for v in style["features"].values())
    ids = label[0, 0].numpy()
    out = t.translate(ids, style=style)
    again = t.translate(ids, style=json.loads(out.info["pixtrans_style"]))
    assert out.tobytes() == again.tobytes()


def test_read_weights_matches_safetensors_and_refuses_damaged_files(tmp_path):
    from safetensors.torch import save_file

    from pixtrans.checkpoints import read_weights, weight_keys
    from pixtrans.errors import CheckpointError

    tensors = {
        "a": torch.randn(3, 4),
        "b": torch.randn(5).to(torch.bfloat16),
        "c": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "d": torch.zeros(0),
        "e": torch.tensor([True, False]),
    }
    save_file(tensors, str(tmp_path / WEIGHTS))
    assert sorted(weight_keys(tmp_path)) == sorted(tensors)
    got = read_weights(tmp_path, lambda k: k != "c")
    assert set(got) == {"a", "b", "d", "e"}
    assert all(torch.equal(got[k], tensors[k]) and got[k].dtype == tensors[k].dtype for k in got)
    data = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(data[:-7])
    with pytest.raises(CheckpointError, match="damaged"):
        read_weights(tmp_path, lambda k: True)
    (tmp_path / WEIGHTS).write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="damaged"):
        weight_keys(tmp_path)
