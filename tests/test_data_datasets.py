"""Every layout on tiny generated files, the item contract, and bad inputs named in DataError."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pixtrans.config import DataConfig
from pixtrans.data import build_dataset, check_dataset, dataset_info
from pixtrans.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _ids(h=16, w=20, n=5):
    return RNG.integers(0, n, (h, w), dtype=np.uint8)


def _photo(h=16, w=20):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(arr, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _triplets(root: Path, split: str, names, inst=True, img=True, h=16, w=20, n=5, fmt="{}_{}"):
    for name in names:
        label = _ids(h, w, n)
        _save(label, root / fmt.format(split, "label") / f"{name}.png")
        if inst:
            _save((label.astype(np.uint16) * 1000 + 1), root / fmt.format(split, "inst") / f"{name}.png")
        if img:
            _save(_photo(h, w), root / fmt.format(split, "img") / f"{name}.png")


def cfg(root, layout, **kw):
    base = {"preprocess": "none", "flip": False, "label_nc": 5, "no_instance": False}
    if layout in ("aligned", "paired"):
        base.update(label_nc=0, no_instance=True)
    base.update(kw)
    return DataConfig(root=str(root), layout=layout, **base)


def _check_item(item, h, w, label=True, inst=True, target=True):
    if label:
        assert item["input"].dtype == torch.int64 and item["input"].shape == (1, h, w)
    else:
        assert item["input"].dtype == torch.float32 and item["input"].shape[1:] == (h, w)
        assert item["input"].min() >= -1 and item["input"].max() <= 1
    assert ("inst" in item) == inst and ("target" in item) == target
    if inst:
        assert item["inst"].dtype == torch.int64 and item["inst"].shape == (1, h, w)
    if target:
        t = item["target"]
        assert t.dtype == torch.float32 and t.shape == (3, h, w) and t.min() >= -1 and t.max() <= 1
    assert isinstance(item["name"], str)


# ---------------------------------------------------------------------------- layouts
def test_synth_layout(synth_root):
    c = cfg(synth_root, "synth", label_nc=8, preprocess="resize_and_crop", load_size=72, crop_size=64, flip=True)
    ds = build_dataset(c, "train", train=True)
    assert len(ds) == 8 and ds.kind == "label" and ds.label_nc == 8
    meta = json.loads((synth_root / "classes.json").read_text())
    assert ds.class_names == meta["names"] and ds.palette == meta["colors"]
    item = ds[0]
    _check_item(item, 64, 64)
    assert item["input"].max() < 8 and item["name"] == "train_00000"
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["input"].shape == (4, 1, 64, 64) and len(batch["name"]) == 4
    test = build_dataset(c.model_copy(update={"no_instance": True}), "test", train=False)
    assert len(test) == 4
    _check_item(test[1], 64, 64, inst=False)
    # test mode is deterministic
    assert torch.equal(test[2]["target"], test[2]["target"])


def test_synth_instances_and_labels_resize_nearest(synth_root):
    ds = build_dataset(cfg(synth_root, "synth", label_nc=8, preprocess="scale_width", load_size=45), "train", True)
    raw = ds.load_maps(0)
    item = ds[0]
    assert set(item["input"].unique().tolist()) <= set(np.unique(raw["label"]).tolist())
    assert set(item["inst"].unique().tolist()) <= set(np.unique(raw["inst"]).tolist())
    assert item["input"].shape[-1] == 45 and item["input"].shape[-2] % 4 == 0


def test_no_instance_files_uses_label(tmp_path):
    _triplets(tmp_path, "train", ["a", "b"], inst=False)
    ds = build_dataset(cfg(tmp_path, "pix2pixhd"), "train", True)
    item = ds[0]
    assert torch.equal(item["inst"], item["input"])


def test_aligned_layout_and_direction(tmp_path):
    a, b = _photo(16, 20), _photo(16, 20)
    _save(np.concatenate([a, b], 1), tmp_path / "train" / "x.jpg")
    _save(np.concatenate([b, a], 1), tmp_path / "train" / "y.png")
    ds = build_dataset(cfg(tmp_path, "aligned"), "train", True)
    assert ds.kind == "image" and ds.names == ["x", "y"]
    item = ds[1]
    _check_item(item, 16, 20, label=False, inst=False)
    assert torch.allclose((item["input"] + 1) * 127.5, torch.from_numpy(b).permute(2, 0, 1).float(), atol=1e-3)
    rev = build_dataset(cfg(tmp_path, "aligned", direction="BtoA"), "train", True)[1]
    assert torch.equal(rev["input"], item["target"]) and torch.equal(rev["target"], item["input"])
    grey = build_dataset(cfg(tmp_path, "aligned", input_nc=1), "train", True)[0]
    assert grey["input"].shape == (1, 16, 20)


def test_sizes_follow_the_data_unless_given(tmp_path):
    for name in ("x", "y"):
        _save(np.concatenate([_photo(24, 32), _photo(24, 32)], 1), tmp_path / "train" / f"{name}.png")
    base = {"root": str(tmp_path), "layout": "aligned", "label_nc": 0}
    c = DataConfig(**base)  # resize_and_crop 286/256 by default would upscale 24 px photos to 256
    ds = build_dataset(c, "train", True)
    assert (c.load_size, c.crop_size) == (24, 24) and ds[0]["input"].shape == (3, 24, 24)
    assert build_dataset(c, "train", False)[0]["target"].shape == (3, 24, 24)
    c = DataConfig(**base, crop_size=16)  # a given crop is kept; the load size follows the data
    assert build_dataset(c, "train", True)[0]["input"].shape == (3, 16, 16) and c.load_size == 24
    c = DataConfig(**base, preprocess="scale_width")
    build_dataset(c, "train", False)
    assert (c.load_size, c.crop_size) == (32, 32)
    c = DataConfig(**base, load_size=64, crop_size=48)  # both given: as the config says
    assert build_dataset(c, "train", False)[0]["input"].shape == (3, 48, 48)


def test_aligned_test_split_falls_back_to_val(tmp_path):
    _save(_photo(8, 16), tmp_path / "val" / "v.png")
    ds = build_dataset(cfg(tmp_path, "aligned"), "test", False)
    assert ds.names == ["v"] and ds[0]["input"].shape == (3, 8, 8)


@pytest.mark.parametrize("with_split", [True, False])
def test_paired_layout(tmp_path, with_split):
    base = tmp_path / "train" if with_split else tmp_path
    for n in ("p1", "p2", "p3"):
        _save(_photo(), base / "A" / f"{n}.png")
        _save(_photo(), base / "B" / f"{n}.jpg")
    ds = build_dataset(cfg(tmp_path, "paired"), "train", True)
    assert ds.names == ["p1", "p2", "p3"]
    _check_item(ds[2], 16, 20, label=False, inst=False)


def test_paired_missing_partner_raise_and_skip(tmp_path):
    for n in ("p1", "p2", "p3"):
        _save(_photo(), tmp_path / "train" / "A" / f"{n}.png")
    for n in ("p1", "p3", "p4"):
        _save(_photo(), tmp_path / "train" / "B" / f"{n}.png")
    with pytest.raises(DataError, match=r"p2\.png: missing partner"):
        build_dataset(cfg(tmp_path, "paired"), "train", True)
    ds = build_dataset(cfg(tmp_path, "paired", on_error="skip"), "train", True)
    assert ds.names == ["p1", "p3"] and ds.skipped == 2
    assert {Path(p.path).name for p in ds.problems} == {"p2.png", "p4.png"}


def test_pix2pixhd_layout_cityscapes_names(tmp_path):
    for n in ("aachen_000000_000019", "aachen_000001_000019"):
        lab = _ids(8, 16, 34)
        _save(lab, tmp_path / "train_label" / f"{n}_gtFine_labelIds.png")
        _save(lab.astype(np.uint16) * 1000, tmp_path / "train_inst" / f"{n}_gtFine_instanceIds.png")
        _save(_photo(8, 16), tmp_path / "train_img" / f"{n}_leftImg8bit.png")
    ds = build_dataset(cfg(tmp_path, "pix2pixhd", label_nc=35), "train", True)
    assert ds.names == ["aachen_000000_000019", "aachen_000001_000019"]
    assert ds.class_names[26] == "car" and ds.palette[7] == [128, 64, 128]
    item = ds[1]
    _check_item(item, 8, 16)
    assert torch.equal(item["inst"] // 1000, item["input"])


def test_cityscapes_official_layout(tmp_path):
    for split, city in (("train", "aachen"), ("val", "lindau")):
        for k in range(2):
            stem = f"{city}_00000{k}_000019"
            lab = _ids(8, 16, 34)
            d = tmp_path / "gtFine" / split / city
            _save(lab, d / f"{stem}_gtFine_labelIds.png")
            _save(lab.astype(np.uint16) * 1000 + 1, d / f"{stem}_gtFine_instanceIds.png")
            _save(_photo(8, 16), d / f"{stem}_gtFine_color.png")  # ignored
            _save(_photo(8, 16), tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
    ds = build_dataset(cfg(tmp_path, "cityscapes", label_nc=35), "train", True)
    assert ds.names == ["aachen_000000_000019", "aachen_000001_000019"]
    _check_item(ds[0], 8, 16)
    assert ds[0]["inst"].max() > 255
    test = build_dataset(cfg(tmp_path, "cityscapes", label_nc=35), "test", False)
    assert [n.split("_")[0] for n in test.names] == ["lindau", "lindau"]


def test_coco_layout_dontcare(tmp_path):
    _triplets(tmp_path, "val", ["000001", "000002"], n=182)
    lab = np.array(Image.open(tmp_path / "val_label" / "000001.png"))
    lab[0, :4] = 255
    _save(lab, tmp_path / "val_label" / "000001.png")
    c = cfg(tmp_path, "coco", label_nc=182)
    with pytest.raises(DataError, match=r"000001\.png.*255") as e:
        build_dataset(c, "test", False)[0]
    assert "contain_dontcare" in e.value.hint
    ds = build_dataset(c.model_copy(update={"contain_dontcare": True}), "test", False)
    assert ds[0]["input"][0, 0, :4].tolist() == [255] * 4
    assert len(ds.class_names) == 182 and ds.class_names[0] == "person"


def test_ade20k_layout_shifts_ids(tmp_path):
    lab = np.array([[0, 1, 2, 150]] * 4, dtype=np.uint8)
    for split in ("training", "validation"):
        _save(lab, tmp_path / "annotations" / split / "ADE_x.png")
        _save(_photo(4, 4), tmp_path / "images" / split / "ADE_x.jpg")
    c = cfg(tmp_path, "ade20k", label_nc=150, contain_dontcare=True, no_instance=True)
    ds = build_dataset(c, "train", True)
    assert ds[0]["input"][0, 0].tolist() == [255, 0, 1, 149]
    assert ds.class_names[0] == "wall" and len(ds.class_names) == 150
    assert len(build_dataset(c, "test", False)) == 1


def test_custom_layout_optional_instance(tmp_path):
    _triplets(tmp_path, "train", ["a", "b", "c"], inst=False, fmt="{}/{}")
    for n in ("a", "b", "c"):
        (tmp_path / "train" / "img" / f"{n}.png").rename(_dir(tmp_path / "train" / "image") / f"{n}.png")
    ds = build_dataset(cfg(tmp_path, "custom"), "train", True)
    assert len(ds) == 3
    _check_item(ds[0], 16, 20)
    (tmp_path / "classes.json").write_text(
        json.dumps({"names": list("vwxyz"), "colors": [[i, i, i] for i in range(5)]})
    )
    assert dataset_info(cfg(tmp_path, "custom"))["class_names"] == list("vwxyz")
    assert dataset_info(cfg(tmp_path, "custom", label_nc=6))["class_names"][5] == "class 5"


def _dir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_max_items_order_and_info(tmp_path):
    _triplets(tmp_path, "train", ["c", "a", "b", "d"])
    (tmp_path / "train_label" / "._a.png").write_bytes(b"AppleDouble")  # hidden files are ignored
    ds = build_dataset(cfg(tmp_path, "pix2pixhd", max_items=3), "train", True)
    assert ds.names == ["a", "b", "c"]
    info = dataset_info(cfg(tmp_path, "pix2pixhd", label_nc=35))
    assert info["kind"] == "label" and len(info["palette"]) == 35 and info["class_names"][23] == "sky"
    assert dataset_info(cfg(tmp_path, "aligned"))["kind"] == "image"


def test_require_target(tmp_path):
    _triplets(tmp_path, "test", ["a"], img=False)
    with pytest.raises(DataError, match="test_img"):
        build_dataset(cfg(tmp_path, "pix2pixhd"), "test", False)
    ds = build_dataset(cfg(tmp_path, "pix2pixhd"), "test", False, require_target=False)
    _check_item(ds[0], 16, 20, target=False)


def test_config_errors(tmp_path):
    _triplets(tmp_path, "train", ["a"])
    with pytest.raises(ConfigError, match="label_nc"):
        build_dataset(cfg(tmp_path, "pix2pixhd", label_nc=0), "train", True)
    with pytest.raises(ConfigError, match="output_nc"):
        build_dataset(cfg(tmp_path, "pix2pixhd", output_nc=4), "train", True)
    with pytest.raises(DataError, match="nosuch_label"):
        build_dataset(cfg(tmp_path, "pix2pixhd"), "nosuch", True)
    with pytest.raises(DataError, match="does-not-exist"):
        build_dataset(cfg(tmp_path / "does-not-exist", "pix2pixhd"), "train", True)


# ---------------------------------------------------------------------------- bad files
def _break(root: Path, case: str) -> Path:
    """Make one bad file in a good pix2pixhd tree; returns the file the error must name."""
    if case == "truncated":
        p = root / "train_img" / "b.png"
        p.write_bytes(p.read_bytes()[:60])
    elif case == "not_an_image":
        p = root / "train_label" / "b.png"
        p.write_text("hello")
    elif case == "rgb_label":
        p = _save(_photo(), root / "train_label" / "b.png")
    elif case == "size_differs":
        p = _save(_photo(16, 24), root / "train_img" / "b.png")
    elif case == "inst_size_differs":
        p = _save(np.ones((15, 20), np.uint16) * 300, root / "train_inst" / "b.png")
    elif case == "label_out_of_range":
        p = _save(np.full((16, 20), 40, np.uint8), root / "train_label" / "b.png")
    elif case == "missing_img":
        p = root / "train_label" / "b.png"
        (root / "train_img" / "b.png").unlink()
    elif case == "missing_inst":
        p = root / "train_label" / "b.png"
        (root / "train_inst" / "b.png").unlink()
    elif case == "alpha_photo":
        p = _save(np.dstack([_photo(), np.zeros((16, 20), np.uint8)]), root / "train_img" / "b.png")
    elif case == "deep_photo":
        p = _save(np.ones((16, 20), np.uint16) * 999, root / "train_img" / "b.png")
    return p


CASES = [
    "truncated",
    "not_an_image",
    "rgb_label",
    "size_differs",
    "inst_size_differs",
    "label_out_of_range",
    "missing_img",
    "missing_inst",
    "alpha_photo",
    "deep_photo",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_file_raises_naming_it(tmp_path, case):
    _triplets(tmp_path, "train", ["a", "b", "c"])
    bad = _break(tmp_path, case)
    with pytest.raises(DataError) as e:
        ds = build_dataset(cfg(tmp_path, "pix2pixhd"), "train", True)
        ds.validate()
    assert Path(e.value.path) == bad and bad.name in str(e.value) and e.value.problem


@pytest.mark.parametrize("case", ["truncated", "label_out_of_range", "missing_img", "size_differs"])
def test_bad_file_skip_mode_counts(tmp_path, case):
    _triplets(tmp_path, "train", ["a", "b", "c"])
    _break(tmp_path, case)
    ds = build_dataset(cfg(tmp_path, "pix2pixhd", on_error="skip"), "train", True)
    names = [ds[i]["name"] for i in range(len(ds))]  # lazily: the bad item is replaced by the next good one
    assert "b" not in names and ds.skipped == 1
    problems = ds.validate()
    assert len(ds) == 2 and ds.names == ["a", "c"] and ds.skipped == 1 and len(problems) == 1


def test_check_dataset_reports_all_problems(tmp_path):
    _triplets(tmp_path, "train", ["a", "b", "c", "d"], n=5)
    _break(tmp_path, "truncated")
    _save(np.full((16, 20), 9, np.uint8), tmp_path / "train_label" / "d.png")
    report = check_dataset(cfg(tmp_path, "pix2pixhd"), splits=("train", "test"))
    train, test = report["splits"]["train"], report["splits"]["test"]
    assert not report["ok"] and train["items"] == 2 and train["bad"] == 2
    assert {Path(p["path"]).name for p in train["problems"]} == {"b.png", "d.png"}
    assert train["sizes"] == [(20, 16)] and set(train["label_ids"]) <= set(range(5))
    assert test["bad"] == 1 and "test_label" in test["problems"][0]["path"]


# ---------------------------------------------------------------------------- the real samples
def test_cityscapes_samples(shared_data):
    root = shared_data / "cityscapes_samples"
    c = DataConfig(
        root=str(root),
        layout="pix2pixhd",
        label_nc=35,
        no_instance=False,
        preprocess="scale_width",
        load_size=128,
        flip=False,
        max_items=2,
    )
    ds = build_dataset(c, "train", True)
    item = ds[0]
    _check_item(item, 64, 128)
    assert item["inst"].max() > 24000 and item["input"].max() < 35
    assert ds.class_names[24] == "person"
    raw = ds.load_maps(1)["inst"]
    assert raw.shape == (1024, 2048) and raw.max() > 255
    things = raw[raw >= 1000]
    assert np.array_equal(things // 1000, ds.load_maps(1)["label"][raw >= 1000])
    test = build_dataset(c, "test", False, require_target=False)
    _check_item(test[0], 64, 128, target=False)


def test_coco_samples(shared_data):
    root = shared_data / "coco_stuff_samples"
    c = DataConfig(
        root=str(root),
        layout="coco",
        label_nc=182,
        contain_dontcare=True,
        no_instance=False,
        preprocess="resize_and_crop",
        load_size=72,
        crop_size=64,
        max_items=3,
    )
    ds = build_dataset(c, "train", True)
    assert len(ds) == 3 and ds.class_names[0] == "person"
    _check_item(ds[0], 64, 64)
    val = build_dataset(c, "test", False)  # no test_* folders: falls back to val
    ids = val[0]["input"]
    assert ((ids < 182) | (ids == 255)).all()
    with pytest.raises(DataError, match="contain_dontcare"):
        build_dataset(c.model_copy(update={"contain_dontcare": False}), "train", True).validate()


def test_sizes_follow_data_larger_than_the_default_load_size(tmp_path):
    _save(np.concatenate([_photo(300, 320), _photo(300, 320)], 1), tmp_path / "train" / "x.png")
    c = DataConfig(root=str(tmp_path), layout="aligned", label_nc=0)
    assert build_dataset(c, "train", True)[0]["input"].shape == (3, 300, 300)
    assert (c.load_size, c.crop_size) == (300, 300)
