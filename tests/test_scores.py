"""FID / KID / LPIPS / segmentation score on randomly initialised networks saved in the real weight files' layouts,
hand-checked small cases, ``pixtrans test --fid --kid --lpips --segmenter``, and the messages when weights are
missing."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pixtrans.errors import CheckpointError, ConfigError, WeightsMissingError
from pixtrans.eval.scores import (
    PROTOCOL,
    DistributionScores,
    ScoreOptions,
    SegmentationScore,
    load_segmenter,
    psnr_of_mean_mse,
    to_uint8,
)
from pixtrans.layers import inception as inc
from pixtrans.layers import lpips as lp

sys.path.insert(0, str(Path(__file__).parent))
from test_web_api import TINY, make_run  # noqa: E402  (tiny untrained checkpoints)


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No environment variable and an empty torch hub cache."""
    for var in ("PIXTRANS_INCEPTION", "PIXTRANS_ALEXNET", "PIXTRANS_VGG16", "PIXTRANS_LPIPS_HEADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


class MeanColour(nn.Module):
    """Stand-in feature extractor: the mean RGB of each uint8 image on [0, 1] (3 features), for hand-checked
    FID/KID."""

    num_features = 3

    def forward(self, x):
        return x.float().mean((2, 3)) / 255


def flat_images(colours) -> torch.Tensor:
    """(N, 3, 8, 8) images in [-1, 1], each one flat colour given as 0-255 integers."""
    c = torch.tensor(colours, dtype=torch.float32)
    return (c / 127.5 - 1).view(-1, 3, 1, 1).expand(-1, 3, 8, 8).contiguous()


# ------------------------------------------------------------------------------------------ FID / KID
@pytest.mark.slow
def test_fid_kid_hand_checked_with_stand_in_features():
    g = np.random.default_rng(0)
    real = g.integers(20, 200, size=(200, 3))
    shift = np.array([40, 0, -20])
    scores = DistributionScores(fid=True, kid=True, extractor=MeanColour())
    scores.update(flat_images(real + shift), flat_images(real))
    out = scores.compute()
    expected = float(((shift / 255) ** 2).sum())
    assert out["fid"] == pytest.approx(expected, rel=1e-6)  # same covariance: FID = |mean shift|^2
    # KID: unbiased MMD^2 with the cubic kernel (x.y / d + 1)^3; subsets of min(1000, n) = all 200 images
    x, y = (real + shift) / 255, real / 255
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    mmd = (k(x, x).sum() - np.trace(k(x, x)) + k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
    mmd -= 2 * k(x, y).sum() / m**2
    assert out["kid"] == pytest.approx(mmd, rel=1e-6) and out["kid"] > 0
    assert out["kid_std"] == pytest.approx(0, abs=1e-9)  # every subset is the whole set

    same = DistributionScores(fid=True, kid=True, extractor=MeanColour())
    same.update(flat_images(real), flat_images(real))
    res = same.compute()
    assert res["fid"] == pytest.approx(0, abs=1e-9)
    assert abs(res["kid"]) < 0.1 * out["kid"]  # the unbiased estimator is slightly negative for identical sets


def test_fid_needs_two_images_and_to_uint8_rounds_like_a_saved_png():
    one = DistributionScores(fid=True, kid=True, extractor=MeanColour())
    one.update(flat_images([[1, 2, 3]]), flat_images([[1, 2, 3]]))
    assert math.isnan(one.compute()["fid"]) and math.isnan(one.compute()["kid"])
    x = flat_images([[0, 128, 255]])
    assert to_uint8(x)[0, :, 0, 0].tolist() == [0, 128, 255]
    assert to_uint8(torch.zeros(1, 1, 2, 2)).shape == (1, 3, 2, 2)  # grey -> RGB


def test_tf1_bilinear_resize_hand_checked():
    x = torch.tensor([[[[0.0, 10.0]]]])
    # TF1 (no half-pixel centres): source = dst * 2 / 4 -> 0, 0.5, 1, 1.5 (clamped)
    assert inc.resize_bilinear_tf1(x, 4)[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
    y = torch.rand(1, 3, 5, 7)
    assert inc.resize_bilinear_tf1(y, 5).shape == (1, 3, 5, 5)


def test_inception_weights_missing_is_one_line_that_says_what_to_do(no_weights):
    with pytest.raises(WeightsMissingError) as err:
        inc.load_fid_inception()
    msg = str(err.value)
    assert "\n" not in msg and "PIXTRANS_INCEPTION" in msg and "pt_inception-2015-12-05-6726825d.pth" in msg
    with pytest.raises(WeightsMissingError, match="does not exist"):
        inc.load_fid_inception(no_weights / "nope.pth")
    with pytest.raises(WeightsMissingError):
        ScoreOptions(fid=True)  # options alone load nothing
        from pixtrans.eval.scores import SetScorer

        SetScorer(ScoreOptions(kid=True))


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory) -> Path:
    return inc.save_random_fid_inception(tmp_path_factory.mktemp("inception") / inc.INCEPTION_FILES[0])


@pytest.mark.slow
def test_fid_inception_layout_round_trip_and_identical_sets(inception_file, no_weights, monkeypatch):
    state = torch.load(inception_file, weights_only=True)
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and tuple(state["fc.weight"].shape) == (1008, 2048)
    assert not any("AuxLogits" in k or "num_batches_tracked" in k for k in state)
    # found through the hub cache under its published name
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    (hub / inc.INCEPTION_FILES[0]).symlink_to(inception_file)
    net = inc.load_fid_inception()
    assert torch.equal(net.Mixed_6b.branch7x7_2.conv.weight, state["Mixed_6b.branch7x7_2.conv.weight"])
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    b = torch.rand(2, 3, 32, 32, generator=g).clamp(0.6, 1)
    with torch.no_grad():
        fa, fb = net(to_uint8(a)), net(to_uint8(b))
    assert fa.shape == (2, 2048) and torch.isfinite(fa).all() and fa.std() > 0
    same = DistributionScores(fid=True, kid=False, extractor=net)
    same.add_features(fa, fa)
    diff = DistributionScores(fid=True, kid=False, extractor=net)
    diff.add_features(fb, fa)
    assert net.source == str(hub / inc.INCEPTION_FILES[0])
    assert same.compute()["fid"] == pytest.approx(0, abs=1e-3)
    assert diff.compute()["fid"] > 1e-2


def test_inception_wrong_file_says_which_keys(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match="not the FID Inception-v3: missing"):
        inc.load_fid_inception(tmp_path / "vgg.pth")


# ------------------------------------------------------------------------------------------ LPIPS
@pytest.mark.slow
@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_lpips_with_random_backbone_and_shipped_heads(tmp_path, no_weights, monkeypatch, net):
    bb = lp.save_random_backbone(tmp_path / lp.NETS[net]["file"], net)
    monkeypatch.setenv(lp.NETS[net]["env"], str(bb))
    model = lp.load_lpips(net)  # heads: the copy torchmetrics ships (or an installed lpips)
    assert Path(model.source["heads"]).name == f"{net}.pth"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 48, 48, generator=g) * 2 - 1
    y = torch.rand(2, 3, 48, 48, generator=g) * 2 - 1
    d = model(x, y)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(model(y, x), d, rtol=1e-5)  # symmetric
    with torch.no_grad():
        for p in model.lins:
            p.mul_(2)
    assert torch.allclose(model(x, y), 2 * d, rtol=1e-5)  # linear in the heads


def test_lpips_heads_file_layout_and_messages(tmp_path, no_weights, monkeypatch):
    bb = lp.save_random_backbone(tmp_path / "alex.pth", "alex")
    with pytest.raises(WeightsMissingError) as err:
        lp.load_lpips("alex")
    msg = str(err.value)
    assert "\n" not in msg and "PIXTRANS_ALEXNET" in msg and "alexnet-owt-7be5be79" in msg
    heads = lp.save_random_heads(tmp_path / "heads" / "alex.pth", "alex")
    monkeypatch.setenv("PIXTRANS_LPIPS_HEADS", str(heads.parent))  # a folder holding alex.pth
    model = lp.load_lpips("alex", backbone=bb)
    assert torch.equal(model.lins[2].data, torch.load(heads, weights_only=True)["lin2.model.1.weight"])
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"lin0.model.1.weight is shape \(1, 3, 1, 1\), needs \(1, 64, 1, 1\)"):
        lp.load_lpips("alex", backbone=bb, heads=tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="not a torchvision alex state dict"):
        lp.load_lpips("alex", backbone=heads)


# ------------------------------------------------------------------------------------------ segmentation
def test_confusion_matrix_hand_checked():
    label = np.array([[[0, 0, 1, 1], [2, 2, 255, 1]]])
    pred = np.array([[[0, 1, 1, 1], [2, 0, 0, 1]]])
    s = SegmentationScore()
    s.update(pred, label)
    r = s.compute()
    # IoU: class 0 = 1/3, class 1 = 3/4, class 2 = 1/2; 5 of 7 non-ignored pixels right; recalls 1/2, 1, 1/2
    assert r["miou"] == pytest.approx(19 / 36)
    assert r["pixel_acc"] == pytest.approx(5 / 7)
    assert r["mean_class_acc"] == pytest.approx(2 / 3)
    assert r["iou_per_class"] == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert r["pixels"] == 7
    # the matrix accumulates over the set: the same batch twice gives the same ratios
    s.update(torch.from_numpy(pred), torch.from_numpy(label))
    assert s.compute()["miou"] == pytest.approx(19 / 36) and s.compute()["pixels"] == 14
    # label_map: dataset ids -> segmenter ids, unlisted ids ignored (here: class 2)
    m = SegmentationScore(label_map={0: 0, 1: 1})
    m.update(pred, label)
    assert m.compute()["miou"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert m.compute()["pixel_acc"] == pytest.approx(4 / 5)
    assert math.isnan(SegmentationScore().compute()["miou"])


class ArgmaxRGB(nn.Module):
    """A 'segmenter' whose class scores are the RGB channels: pure red/green/blue pixels are classes 0/1/2."""

    def forward(self, x):
        return x * 1.0


def _colour_images(ids: torch.Tensor) -> torch.Tensor:
    """(N, H, W) ids in {0, 1, 2} -> (N, 3, H, W) images in [-1, 1], pure red / green / blue."""
    return torch.nn.functional.one_hot(ids, 3).permute(0, 3, 1, 2).float() * 2 - 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_segmenter_files(tmp_path, fmt):
    ids = torch.randint(0, 3, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    if fmt == "torchscript":
        path = tmp_path / "seg.pt"
        torch.jit.save(torch.jit.script(ArgmaxRGB()), str(path))
    else:
        pytest.importorskip("onnxruntime")
        path = tmp_path / "seg.onnx"
        dyn = {"image": {0: "n", 2: "h", 3: "w"}}
        x0 = (torch.zeros(1, 3, 16, 16),)
        torch.onnx.export(ArgmaxRGB(), x0, str(path), input_names=["image"], dynamic_axes=dyn, dynamo=False)
    seg = load_segmenter(path, "unit")
    pred = seg(_colour_images(ids))
    assert pred.shape == (2, 16, 16) and pred.dtype == torch.int64
    assert torch.equal(pred, ids)
    assert torch.equal(seg(_colour_images(ids[:, :8, :12])), ids[:, :8, :12])  # any size


def test_segmenter_errors(tmp_path):
    with pytest.raises(WeightsMissingError, match="ONNX .* or TorchScript"):
        load_segmenter(tmp_path / "none.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a TorchScript file"):
        load_segmenter(tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="segmenter input"):
        load_segmenter(tmp_path / "junk.pt", "bgr")


def test_psnr_of_mean_mse_pools_before_the_log():
    assert psnr_of_mean_mse([10.0, 30.0]) == pytest.approx(-10 * math.log10((0.1 + 0.001) / 2))
    assert psnr_of_mean_mse([math.inf, math.inf]) == math.inf
    assert set(PROTOCOL) >= {"psnr", "psnr_set", "ssim", "vif", "lpips", "fid", "kid", "miou", "pixel_acc"}


# ------------------------------------------------------------------------------------------ pixtrans test
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synth_root) -> Path:
    base = tmp_path_factory.mktemp("scores_run")
    return make_run(base / "p2p", "pix2pix_synth.yaml", [f"data.root={synth_root}", *TINY, "model.num_downs=5"])


@pytest.mark.slow
def test_pixtrans_test_with_every_score(tiny_run, synth_root, tmp_path, no_weights, monkeypatch, capsys):
    from pixtrans.cli import main

    seg = tmp_path / "seg.pt"
    torch.jit.save(torch.jit.script(ArgmaxRGB()), str(seg))
    out = tmp_path / "test"
    args = ["test", str(tiny_run), "--data", str(synth_root), "--out", str(out), "--lpips", "--segmenter", str(seg)]
    assert main(args) == 2  # no LPIPS backbone: one line that says what to do, before any translation
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("pixtrans: error: ") and "PIXTRANS_ALEXNET" in err and not out.exists()

    monkeypatch.setenv("PIXTRANS_ALEXNET", str(lp.save_random_backbone(tmp_path / "alex.pth")))
    assert main([*args, "--seg-input", "unit", "--seg-ignore", "0,255"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["lpips"] >= 0 and 0 <= m["miou"] <= 1 and 0 <= m["pixel_acc"] <= 1
    assert m["segmentation"]["pixels"] > 0 and "segmenter" in m["weights"] and "lpips" in m["weights"]
    for k in ("psnr", "psnr_set", "ssim", "vif", "lpips", "miou", "pixel_acc"):
        assert m["protocol"][k]["aggregate"] and m["protocol"][k]["range"], k
    assert m["protocol"]["psnr"]["aggregate"] == "mean of per-image values"
    assert m["protocol"]["miou"]["aggregate"].startswith("whole set")
    assert "lpips" in (out / "per_image.csv").read_text().splitlines()[0]


def test_run_test_fid_kid_with_stand_in_extractor(tiny_run, synth_root, tmp_path):
    from pixtrans.eval.evaluate import run_test
    from pixtrans.infer.translator import load

    opts = ScoreOptions(fid=True, kid=True, extractor=MeanColour())
    m = run_test(load(tiny_run, device="cpu"), synth_root, tmp_path / "t", scores=opts, progress=False)
    assert m["fid"] >= 0 and m["kid"] is not None and m["kid_std"] is not None
    assert m["protocol"]["fid"]["aggregate"].startswith("whole set")
    assert m["weights"]["inception"].startswith("custom extractor")
    assert m["protocol"]["vif"]["how"].find("0-255") >= 0
