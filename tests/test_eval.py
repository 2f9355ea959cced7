"""Metrics (PSNR/SSIM/VIF), the HTML report, image helpers and plots."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans.errors import DataError
from pixtrans.eval.metrics import MetricAccumulator, image_metrics, per_image_metrics
from pixtrans.eval.plots import log_columns, plot_heatmap, plot_losses, read_log
from pixtrans.eval.report import image_to_pil, make_grid, save_image, write_html_report

pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_images(b: int, size: int, seed: int = 0) -> torch.Tensor:
    """Natural-ish images in [-1, 1]: upsampled low-frequency noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(b, 3, size // 8, size // 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_identical_images_are_perfect():
    x = smooth_images(2, 64)
    m = image_metrics(x, x)
    assert math.isinf(m["psnr"]) and m["psnr"] > 0
    assert m["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert m["vif"] == pytest.approx(1.0, abs=1e-4)


def test_noise_lowers_metrics_monotonically():
    x = smooth_images(2, 64)
    light, heavy = image_metrics(noisy(x, 0.05), x), image_metrics(noisy(x, 0.3), x)
    for k in ("psnr", "ssim", "vif"):
        assert math.isfinite(light[k]) and math.isfinite(heavy[k])
        assert heavy[k] < light[k], k
    assert light["ssim"] < 1.0 and light["vif"] < 1.0
    # PSNR follows its definition: 10 log10(1 / MSE) on [0, 1]
    y = noisy(x, 0.1)
    mse = (((y + 1) / 2 - (x + 1) / 2) ** 2).mean(dim=(1, 2, 3))
    assert per_image_metrics(y, x)["psnr"] == pytest.approx((10 * torch.log10(1 / mse)).tolist(), rel=1e-4)


def test_small_images_give_nan_vif_with_note():
    x = smooth_images(1, 32)
    m = image_metrics(noisy(x, 0.1), x)
    assert math.isnan(m["vif"]) and math.isfinite(m["ssim"])
    acc = MetricAccumulator()
    acc.update(noisy(x, 0.1), x)
    summary = acc.summary()
    assert summary["vif"] is None and any("41" in n for n in summary["notes"])
    json.dumps(summary, allow_nan=False)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        image_metrics(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 48, 64))


def test_accumulator_means_over_images():
    x = smooth_images(3, 48)
    a, b = noisy(x[:2], 0.1, seed=2), noisy(x[2:], 0.4, seed=3)
    acc = MetricAccumulator()
    per_a = acc.update(a, x[:2], names=["a0", "a1"])
    per_b = acc.update(b, x[2:], names=["b0"])
    out = acc.compute()
    assert out["n"] == 3
    for k in ("psnr", "ssim", "vif"):
        assert out[k] == pytest.approx(np.mean(per_a[k] + per_b[k]), rel=1e-6)
    rows = acc.per_image()
    assert [r["name"] for r in rows] == ["a0", "a1", "b0"] and rows[2]["psnr"] < rows[0]["psnr"]
    with pytest.raises(ValueError, match="names"):
        acc.update(a, x[:2], names=["only_one"])


def test_tensor_to_pil_ranges_and_labels():
    t = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    px = np.asarray(image_to_pil(t))
    assert px.shape == (2, 2, 3) and px[0, 0].tolist() == [0, 128, 255]
    palette = [(10, 20, 30), (200, 100, 0)]
    ids = torch.tensor([[[0, 1], [1, 0]]])
    lab = np.asarray(image_to_pil(ids, palette))
    assert lab[0, 1].tolist() == [200, 100, 0] and lab[0, 0].tolist() == [10, 20, 30]
    onehot = torch.nn.functional.one_hot(ids[0], 2).permute(2, 0, 1).float()  # (C, H, W) one-hot
    assert np.array_equal(np.asarray(image_to_pil(onehot, palette)), lab)


def test_make_grid_places_cells():
    a = np.full((8, 10, 3), 50, np.uint8)
    b = torch.ones(3, 6, 4)  # white, smaller than its column
    ids = torch.tensor([[[1] * 10] * 8])
    grid = make_grid([[a, b, ids], [a, None, a]], palette=[(0, 0, 0), (255, 0, 0)], pad=2)
    arr = np.asarray(grid)
    assert grid.size == (2 + 10 + 2 + 4 + 2 + 10 + 2, 2 + 8 + 2 + 8 + 2)
    assert (arr[2:10, 2:12] == 50).all()
    assert (arr[2:8, 14:18] == 255).all()
    assert arr[2, 20].tolist() == [255, 0, 0]


def test_report_links_existing_files(tmp_path):
    out = tmp_path / "report"
    x = smooth_images(2, 32)
    rows = []
    for i in range(2):
        names = {}
        for col, img in (("input", x[i]), ("output", noisy(x[i], 0.1)), ("target", x[i])):
            names[col] = str(save_image(img, out / "images" / f"s{i}_{col}.png").relative_to(out))
        rows.append({"name": f"<s{i}>", **names, "psnr": 20.0 + i})
    rows[1]["output"] = str(out / rows[1]["output"])  # absolute paths become relative links
    page = write_html_report(out, rows, {"psnr": 20.5, "ssim": 0.8, "n": 2}, title="test run")
    text = page.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert len(srcs) == 6
    assert all((out / s).is_file() for s in srcs) and not any(s.startswith("/") for s in srcs)
    assert "&lt;s0&gt;" in text and "<th>psnr</th>" in text and "20.5" in text and "test run" in text


def test_plots_write_pngs(synth_root, tmp_path):
    from pixtrans.config import load_config
    from pixtrans.train.trainer import Trainer

    # the log a real training run writes (learning rates as lr_<optimizer>: lr_G, lr_D)
    over = ["model.ngf=8", "model.ndf=8", "model.num_downs=5", "data.load_size=32", "data.crop_size=32"]
    over += ["train.steps=3", "train.log_every=1", "train.progress=false", "train.sample_every=0"]
    cfg = load_config("configs/pix2pix_synth.yaml", [f"data.root={synth_root}", *over])
    Trainer(cfg, tmp_path / "run").fit()
    log = tmp_path / "run" / "log.csv"
    losses, lrs = log_columns(read_log(log))
    assert sorted(losses) == ["D_fake", "D_real", "G_GAN", "G_L1"] and lrs == ["lr_G", "lr_D"]
    png = plot_losses(log, tmp_path / "plots" / "losses.png")
    assert Image.open(png).size[0] > 100
    heat = plot_heatmap(
        [[0.5, 0.6], [0.7, float("nan")]], ["128", "256"], ["in 64", "in 128"], tmp_path / "h.png", "SSIM"
    )
    assert Image.open(heat).size[0] > 50
    with pytest.raises(ValueError, match="labels"):
        plot_heatmap([[1.0]], ["a", "b"], ["c"], tmp_path / "bad.png", "x")


def test_plot_losses_bad_logs(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plot_losses(tmp_path / "missing.csv", tmp_path / "x.png")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="step"):
        plot_losses(bad, tmp_path / "x.png")


def test_report_colorize_matches_label_colorize_and_blacks_out_negative_ids():
    from pixtrans.data.labels import colorize as label_colorize
    from pixtrans.eval.report import colorize, default_palette

    ids = np.array([[-1, 0, 1], [2, 255, 300]])
    out = colorize(ids)
    assert np.array_equal(out, label_colorize(ids, default_palette()))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 2].tolist() == list(default_palette()[1])
    assert out[1, 2].tolist() == [0, 0, 0]  # beyond the 256-colour palette
