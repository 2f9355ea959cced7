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


# ---------------------------------------------------------------------------------------------- renamed keys
def _family_sections():
    from pixtrans.config import DataConfig, TrainConfig
    from pixtrans.registry import FAMILIES, model_config_class

    return [DataConfig, TrainConfig] + [model_config_class(f) for f in FAMILIES]


def test_one_spelling_per_concept():
    sections = _family_sections()
    old = {key for s in sections for key in s.renamed}
    for s in sections:
        assert not old & set(s.model_fields), f"{s.__name__} still has a field under an old name"
        assert set(s.renamed.values()) <= set(s.model_fields), f"{s.__name__}.renamed points at a missing field"


def test_old_names_load_with_a_deprecation_warning(tmp_path):
    import yaml

    from pixtrans.config import save_config

    with pytest.warns(DeprecationWarning) as caught:
        cfg = config_from_dict({"family": "msg_unet", "model": {"alpha": 5.0, "beta": 0.5, "init": "xavier"}})
    assert (cfg.model.lambda_feat, cfg.model.lambda_vgg, cfg.model.init_type) == (5.0, 0.5, "xavier")
    assert sorted(str(w.message).split(";")[0] for w in caught) == [
        "MSGUNetConfig: 'alpha' is renamed 'lambda_feat'",
        "MSGUNetConfig: 'beta' is renamed 'lambda_vgg'",
        "MSGUNetConfig: 'init' is renamed 'init_type'",
    ]
    # an old checkpoint's config.yaml and a --set with the old name; saving writes the new names
    old = tmp_path / "config.yaml"
    old.write_text("family: pix2pixhd\nmodel:\n  init: kaiming\n")
    with pytest.warns(DeprecationWarning, match="'init' is renamed 'init_type'"):
        cfg = load_config(old, ["model.init=orthogonal"])
    assert cfg.model.init_type == "orthogonal"
    save_config(cfg, tmp_path / "new.yaml")
    saved = yaml.safe_load((tmp_path / "new.yaml").read_text())["model"]
    assert saved["init_type"] == "orthogonal" and "init" not in saved


def test_old_and_new_name_together_is_an_error():
    with pytest.raises(
        ConfigError, match=r"model: .*'alpha' is the old name of 'lambda_feat'; give only 'lambda_feat'"
    ):
        config_from_dict({"family": "msg_unet", "model": {"alpha": 1.0, "lambda_feat": 2.0}}, "x.yaml")


def test_deprecation_is_one_line_on_stderr():
    import os
    import subprocess
    import sys

    code = (
        "from pixtrans.config import Section\n"
        "class S(Section):\n    renamed = {'old': 'new'}\n    new: int = 0\n"
        "assert S(old=3).new == 3\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert run.stderr.splitlines() == [
        "pixtrans.config:0: DeprecationWarning: S: 'old' is renamed 'new'; the old name still loads but will be removed"
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_use_current_names(path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        load_config(path)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_presets_use_current_names():
    import warnings

    from pixtrans.registry import presets

    with warnings.catch_warnings(record=True) as caught:
        for raw in presets().values():
            config_from_dict(raw)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
