"""VGG19 features: torchvision key layout, loading from files/URLs/env/hub cache, clear errors, the VGG loss."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from pixtrans.errors import CheckpointError, WeightsMissingError
from pixtrans.layers import vgg as vggmod
from pixtrans.layers.vgg import VGG19_URL, VGG19Features, VGGLoss, load_vgg19, save_random_vgg19

# torchvision vgg19: conv layers sit at these indices of `features` (structure, not a result)
CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    return save_random_vgg19(tmp_path_factory.mktemp("vgg") / "vgg19_random.pth", seed=3, classifier=False)


@pytest.fixture(scope="module")
def vgg_state(vgg_file):
    return torch.load(vgg_file, weights_only=True)


@pytest.fixture
def no_sources(monkeypatch, tmp_path):
    """No env var, an empty torch hub dir, and a network call that fails the test."""
    monkeypatch.delenv(vggmod.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)

    def no_network(*a, **k):
        raise AssertionError("tried the network without an explicit URL")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return tmp_path


def test_key_layout_matches_torchvision():
    keys = list(VGG19Features().state_dict())
    assert keys == [f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")]


def test_slices_are_relu1_1_to_relu5_1():
    feats = VGG19Features()(torch.zeros(1, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    assert all(float(f.detach().min()) >= 0 for f in feats)  # each tap is after a ReLU


def test_roundtrip_pth(vgg_file, vgg_state, no_sources):
    model = load_vgg19(vgg_file)
    for k, v in model.state_dict().items():
        assert torch.equal(v, vgg_state[k]), k


def test_roundtrip_safetensors_and_classifier_ignored(tmp_path, vgg_state, no_sources):
    from safetensors.torch import save_file

    state = dict(vgg_state)
    state["classifier.0.weight"] = torch.zeros(4, 4)  # classifier keys of a full torchvision dict are ignored
    state["classifier.6.bias"] = torch.zeros(4)
    path = tmp_path / "v.safetensors"
    save_file(state, str(path))
    model = load_vgg19(str(path))
    assert torch.equal(model.features[34].bias, vgg_state["features.34.bias"])


@pytest.mark.slow
def test_full_random_file_has_classifier(tmp_path, no_sources):
    path = save_random_vgg19(tmp_path / "full.pth", seed=1)
    state = torch.load(path, weights_only=True)
    assert state["classifier.0.weight"].shape == (4096, 25088) and state["classifier.6.weight"].shape == (1000, 4096)
    load_vgg19(path)


def test_env_var_and_hub_cache(monkeypatch, vgg_file, vgg_state, no_sources):
    with pytest.raises(WeightsMissingError):
        load_vgg19()
    monkeypatch.setenv(vggmod.ENV_VAR, str(vgg_file))
    assert torch.equal(load_vgg19().features[0].weight, vgg_state["features.0.weight"])
    # an explicit argument wins over the environment variable
    other = save_random_vgg19(no_sources / "other.pth", seed=9, classifier=False)
    assert torch.equal(load_vgg19(other).features[0].weight, torch.load(other)["features.0.weight"])
    monkeypatch.delenv(vggmod.ENV_VAR)
    cache = no_sources / "torch_home" / "hub" / "checkpoints" / vggmod.VGG19_FILE
    cache.parent.mkdir(parents=True)
    cache.write_bytes(vgg_file.read_bytes())
    assert torch.equal(load_vgg19().features[0].weight, vgg_state["features.0.weight"])


def test_explicit_url_uses_torch_hub(monkeypatch, vgg_state, no_sources):
    seen = {}

    def fake_download(url, **kw):
        seen["url"] = url
        return dict(vgg_state)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    load_vgg19(VGG19_URL)
    assert seen["url"] == VGG19_URL

    def offline(url, **kw):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsMissingError, match="network unreachable"):
        load_vgg19(VGG19_URL)


def test_missing_weights_say_how_to_provide_them(no_sources):
    with pytest.raises(WeightsMissingError) as err:
        load_vgg19()
    msg = str(err.value)
    for needle in (VGG19_URL, "PIXTRANS_VGG19", "model.vgg_weights", "model.no_vgg_loss=true", "checkpoints"):
        assert needle in msg
    with pytest.raises(WeightsMissingError, match="nowhere.pth"):
        load_vgg19(no_sources / "nowhere.pth")


def test_wrong_files_raise_checkpoint_error(tmp_path, vgg_state, no_sources):
    bad_keys = tmp_path / "bad_keys.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad_keys)
    with pytest.raises(CheckpointError, match="bad_keys.pth"):
        load_vgg19(bad_keys)
    bad_shape = tmp_path / "bad_shape.pth"
    state = dict(vgg_state)
    state["features.10.weight"] = torch.zeros(256, 128, 1, 1)
    torch.save(state, bad_shape)
    with pytest.raises(CheckpointError, match=r"bad_shape.pth.*features\.10\.weight"):
        load_vgg19(bad_shape)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_vgg19(garbage)


@pytest.fixture(scope="module")
def loss_fn(vgg_file):
    return VGGLoss(vgg_file)


def test_vgg_loss_zero_for_identical_positive_otherwise(loss_fn):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    assert float(loss_fn(x, x)) == 0.0
    assert float(loss_fn(x, y)) > 0.0


def test_vgg_loss_weights_layers(vgg_file):
    only_last = VGGLoss(vgg_file, layer_weights=(0, 0, 0, 0, 1.0))
    x, y = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    expected = F.l1_loss(only_last.vgg(x)[4], only_last.vgg(y)[4])
    torch.testing.assert_close(only_last(x, y), expected)
    norm = VGGLoss(vgg=only_last.vgg, normalize=True)
    plain = VGGLoss(vgg=only_last.vgg)
    assert float(norm(x, x)) == 0.0 and not torch.isclose(norm(x, y), plain(x, y))
    with pytest.raises(ValueError, match="layer_weights"):
        VGGLoss(vgg_file, layer_weights=(1.0, 1.0))


def test_vgg_loss_gradient_reaches_input_not_vgg(loss_fn):
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    y = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    loss_fn.train()
    assert not loss_fn.vgg.training  # the VGG stays in eval mode
    loss_fn(x, y).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert y.grad is None  # the target is detached
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.vgg.parameters())


def test_vgg_weights_stay_out_of_state_dict(loss_fn):
    assert not any(k.startswith("vgg.") for k in loss_fn.state_dict())
    before = loss_fn.vgg.features[0].weight.clone()
    loss_fn.load_state_dict({}, strict=True)  # a checkpoint without VGG keys loads
    assert torch.equal(loss_fn.vgg.features[0].weight, before)
