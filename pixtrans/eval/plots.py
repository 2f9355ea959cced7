"""Plots as PNG files, drawn on matplotlib Figures without pyplot (no global backend): training-loss curves and
labelled heatmaps (ablation tables)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError

# Columns of the trainer's CSV log that are not losses (learning rates, ``lr`` or ``lr_<optimizer>``, neither).
NON_LOSS = ("step", "epoch", "images_per_s", "time", "wall_s")


def _is_lr(column: str) -> bool:
    return column == "lr" or column.startswith("lr_")


def log_columns(log: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """(loss columns, learning-rate columns) of a :func:`read_log` result; all-empty columns are left out."""
    filled = [k for k in log if not np.all(np.isnan(log[k]))]
    lrs = [k for k in filled if _is_lr(k)]
    return [k for k in filled if k not in NON_LOSS and k not in lrs], lrs


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_log(csv_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The trainer's CSV log as ``column -> float array`` (empty or non-numeric cells are NaN)."""
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(path, "training log not found", "it is written as log.csv in the run folder while training")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if "step" not in fields:
        raise DataError(path, "no 'step' column", "expected the trainer's CSV log: step, epoch, ..., one per loss")
    if not rows:
        raise DataError(path, "the log has no rows yet", "train for at least log_every steps")
    return {k: np.array([_num(r.get(k)) for r in rows], dtype=np.float64) for k in fields if k}


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(y) < 2 * n:
        return y
    good = np.where(np.isnan(y), 0.0, y)
    w = np.where(np.isnan(y), 0.0, 1.0)
    k = np.ones(n)
    num, den = np.convolve(good, k, "same"), np.convolve(w, k, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def plot_losses(csv_path: str | os.PathLike, png_path: str | os.PathLike, title: str | None = None) -> Path:
    """Loss curves (raw, faint, and smoothed) over steps, with the learning rate below; returns the PNG path."""
    log = read_log(csv_path)
    step = log["step"]
    losses, lrs = log_columns(log)
    fig = Figure(figsize=(9, 6 if lrs else 4.5))
    axes = fig.subplots(
        2 if lrs else 1,
        1,
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]} if lrs else None,
    )
    ax = axes[0, 0]
    window = max(1, len(step) // 50)
    for i, k in enumerate(losses):
        color = f"C{i % 10}"
        ax.plot(step, log[k], color=color, alpha=0.25 if window > 1 else 1.0, linewidth=0.8)
        if window > 1:
            ax.plot(step, _smooth(log[k], window), color=color, linewidth=1.5, label=k)
        else:
            ax.lines[-1].set_label(k)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if losses:
        ax.legend(fontsize="small", ncol=2)
    ax.set_title(title or Path(csv_path).parent.name or "training losses")
    if lrs:
        ax2 = axes[1, 0]
        for k in lrs:
            ax2.plot(step, log[k], label=k)
        ax2.set_ylabel("learning rate")
        ax2.grid(alpha=0.3)
        if len(lrs) > 1:
            ax2.legend(fontsize="small")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    png = Path(png_path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    return png


def plot_heatmap(
    matrix,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    fmt: str = ".3f",
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "viridis",
) -> Path:
    """A labelled heatmap with the value printed in each cell (NaN cells show '–'); returns the PNG path."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix of shape {m.shape} does not fit {len(row_labels)} row and {len(col_labels)} column labels"
        )
    fig = Figure(figsize=(1.2 + 0.9 * m.shape[1], 1.0 + 0.6 * m.shape[0]))
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, aspect="auto")
    ax.set_xticks(range(m.shape[1]), [str(c) for c in col_labels], rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), [str(r) for r in row_labels])
    finite = m[np.isfinite(m)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            v = m[i, j]
            text = format(v, fmt) if np.isfinite(v) else "–"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if v <= mid else "black")
    if finite.size:
        fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
