"""Instance maps and reference layouts found as the dataset loaders name them (pixtrans.data.datasets)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pixtrans import cli
from pixtrans.data.datasets import instance_partner, reference_maps
from pixtrans.errors import DataError


def _png(path: Path, value: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 6), value, np.uint8)).save(path)
    return path


def test_cityscapes_label_finds_its_instance_ids(tmp_path):
    city = tmp_path / "gtFine" / "val" / "aachen"
    label = _png(city / "aachen_000000_000019_gtFine_labelIds.png")
    _png(city / "aachen_000000_000019_gtFine_color.png")
    inst = _png(city / "aachen_000000_000019_gtFine_instanceIds.png")
    other = _png(city / "aachen_000001_000019_gtFine_labelIds.png")
    assert instance_partner(label, city) == inst
    assert instance_partner(label, tmp_path / "gtFine" / "val") == inst  # city folders below, as the loader reads
    assert instance_partner(other, city) is None  # its label map is no instance map


def test_pix2pixhd_and_custom_layouts_match_the_stem(tmp_path):
    label = _png(tmp_path / "test_label" / "a.png")
    inst = _png(tmp_path / "test_inst" / "a.png")
    assert instance_partner(label, tmp_path / "test_inst") == inst
    custom = _png(tmp_path / "test" / "instance" / "b.png")
    assert instance_partner(tmp_path / "test" / "label" / "b.png", custom.parent) == custom
    with pytest.raises(DataError, match="folder not found"):
        instance_partner(label, tmp_path / "nowhere")


def test_reference_photo_finds_its_layout(tmp_path):
    photo = _png(tmp_path / "test_img" / "a.png")
    label, inst = _png(tmp_path / "test_label" / "a.png"), _png(tmp_path / "test_inst" / "a.png")
    assert reference_maps(photo) == {"label": label, "inst": inst}
    city = tmp_path / "cs"
    photo = _png(city / "leftImg8bit" / "val" / "bonn" / "bonn_000001_000019_leftImg8bit.png")
    gt = city / "gtFine" / "val" / "bonn"
    label = _png(gt / "bonn_000001_000019_gtFine_labelIds.png")
    inst = _png(gt / "bonn_000001_000019_gtFine_instanceIds.png")
    assert reference_maps(photo) == {"label": label, "inst": inst}
    assert reference_maps(_png(tmp_path / "elsewhere" / "a.png")) == {}


class _Stub:
    """A label model trained with instances; records the instance map it was given."""

    is_label_model = True
    data = SimpleNamespace(no_instance=False)
    path = None

    def __init__(self):
        self.got: list = []

    def translate(self, f, instances=None, style=None, tile=0, all_scales=False):
        self.got.append(instances)
        img = Image.new("RGB", (2, 2))
        img.info["pixtrans_style"] = json.dumps({})
        return img


def test_translate_cli_matches_cityscapes_instances_and_refuses_a_missing_one(tmp_path, monkeypatch, capsys):
    stub = _Stub()
    monkeypatch.setattr(cli, "_load_for_inference", lambda a: stub)
    city = tmp_path / "gtFine" / "val" / "aachen"
    label = _png(city / "aachen_1_gtFine_labelIds.png")
    inst = _png(city / "aachen_1_gtFine_instanceIds.png")
    args = ["translate", "run", str(label), "--instances", str(city), "--out", str(tmp_path / "o")]
    assert cli.main(args) == 0
    assert stub.got == [inst]
    inst.unlink()
    (city / "aachen_1_gtFine_labelIds.png").touch()  # a folder change: the index is read again
    capsys.readouterr()
    assert cli.main([*args[:-1], str(tmp_path / "o2")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (and a progress bar)
    assert len(err) == 1 and "no instance map" in err[0] and "trained with instances" in err[0]
