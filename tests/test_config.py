"""Typed configs: overrides, unknown keys and wrong types are errors naming the key."""

from pathlib import Path

import pytest

from pixtrans.config import apply_overrides, config_from_dict, load_config
from pixtrans.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_config(path, ["data.root=somewhere", "train.steps=3", "model.ngf=16"])
    assert cfg.train.steps == 3 and cfg.model.ngf == 16 and cfg.data.root == "somewhere"


def test_overrides_are_typed():
    cfg = config_from_dict(apply_overrides({"family": "pix2pix"}, ["train.lr=0.001", "data.flip=false"]))
    assert cfg.train.lr == pytest.approx(0.001) and cfg.data.flip is False


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.stpes=3", "train.stpes"),
        ("model.ngff=3", "model.ngff"),
        ("train.steps=many", "train.steps"),
        ("data.layout=nope", "data.layout"),
        ("model.norm=weird", "model.norm"),
    ],
)
def test_bad_keys_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(apply_overrides({"family": "pix2pix"}, [override]), "x.yaml")


def test_unknown_family_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="family"):
        config_from_dict({"family": "cyclegan"})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: pix2pix\ntrain: [1, 2\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.steps"])
