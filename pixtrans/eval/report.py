"""Images to files, side-by-side grids, and the HTML report of a test run (no torchvision: numpy + PIL).

Image-like values accepted everywhere here:

- ``PIL.Image``;
- float tensors in [-1, 1], (C, H, W) or (1, C, H, W): 3 channels = RGB, 1 = grey, any other count = one-hot
  label channels (argmax, then coloured with the palette);
- integer tensors, (H, W), (1, H, W) or (1, 1, H, W): label ids, coloured with the palette;
- numpy arrays (H, W[, C]): uint8 = pixels as they are, float = [-1, 1] like tensors, other integers = label ids.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ..data.labels import colorize as _colorize
from ..data.palettes import palette

ImageLike = Image.Image | Tensor | np.ndarray
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
BASE_COLUMNS = ("name", "input", "output", "target")


def default_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """A deterministic palette of ``n`` distinct colours (:func:`pixtrans.data.palettes.palette`)."""
    return [tuple(c) for c in palette(n)]


def colorize(ids: np.ndarray, palette: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """(H, W) integer label ids -> (H, W, 3) uint8 colours (the default palette unless given); ids outside the
    palette, negative ones included, are black."""
    return _colorize(ids, palette if palette is not None else default_palette())


def _float_chw_to_array(x: np.ndarray, palette) -> np.ndarray:
    c = x.shape[0]
    if c == 3:
        return np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    if c == 1:
        grey = np.round((np.clip(x[0], -1, 1) + 1) * 127.5).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return colorize(x.argmax(0), palette)


def to_array(x: ImageLike, palette: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Any image-like value (see the module docstring) -> (H, W, 3) uint8 RGB array."""
    if isinstance(x, Image.Image):
        return np.asarray(x.convert("RGB"))
    if isinstance(x, Tensor):
        t = x.detach().cpu()
        while t.dim() > 3 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() != 3:
            raise ValueError(f"expected one image (C, H, W), got a tensor of shape {tuple(x.shape)}")
        if not torch.is_floating_point(t):
            if t.shape[0] != 1:
                raise ValueError(f"integer tensors are label maps (1, H, W); got shape {tuple(x.shape)}")
            return colorize(t[0].numpy(), palette)
        return _float_chw_to_array(t.float().numpy(), palette)
    if isinstance(x, np.ndarray):
        if x.ndim == 3 and x.shape[2] == 1:
            x = x[..., 0]
        if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (3, 4)):
            raise ValueError(f"expected an (H, W) or (H, W, 3) array, got shape {x.shape}")
        if x.dtype == np.uint8:
            return np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else np.ascontiguousarray(x[..., :3])
        if np.issubdtype(x.dtype, np.floating):
            chw = x[None] if x.ndim == 2 else x[..., :3].transpose(2, 0, 1)
            return _float_chw_to_array(chw.astype(np.float32), palette)
        if x.ndim == 2:
            return colorize(x, palette)
        raise ValueError(f"integer arrays are label maps (H, W); got shape {x.shape} of {x.dtype}")
    raise TypeError(f"cannot turn a {type(x).__name__} into an image")


def image_to_pil(x: ImageLike, palette: Sequence[Sequence[int]] | None = None) -> Image.Image:
    """A [-1, 1] image tensor (or a label map, array, PIL image) -> RGB ``PIL.Image`` (uint8)."""
    return Image.fromarray(to_array(x, palette), "RGB")


def save_image(x: ImageLike, path: str | os.PathLike, palette: Sequence[Sequence[int]] | None = None) -> Path:
    """Save an image-like value (format from the suffix); creates the folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_to_pil(x, palette).save(path)
    return path


def make_grid(
    rows: Sequence[Sequence[ImageLike | None]],
    palette: Sequence[Sequence[int]] | None = None,
    pad: int = 2,
    header: Sequence[str] | None = None,
    background: int = 255,
) -> Image.Image:
    """Rows of images (e.g. input | output | target) side by side; ``None`` leaves a cell blank.

    Columns are as wide as their widest image and rows as tall as their tallest; label maps are coloured with
    ``palette``. ``header`` puts a title above each column.
    """
    cells = [[None if im is None else to_array(im, palette) for im in row] for row in rows]
    if not cells or not any(c is not None for row in cells for c in row):
        raise ValueError("make_grid needs at least one image")
    ncol = max(len(row) for row in cells)
    widths = [
        max((row[j].shape[1] for row in cells if j < len(row) and row[j] is not None), default=0) for j in range(ncol)
    ]
    heights = [max((c.shape[0] for c in row if c is not None), default=0) for row in cells]
    head_h = 14 if header else 0
    total_w = sum(widths) + pad * (ncol + 1)
    total_h = head_h + sum(heights) + pad * (len(cells) + 1)
    canvas = np.full((total_h, total_w, 3), background, dtype=np.uint8)
    y = head_h + pad
    for row, h in zip(cells, heights):
        x = pad
        for j in range(ncol):
            c = row[j] if j < len(row) else None
            if c is not None:
                canvas[y : y + c.shape[0], x : x + c.shape[1]] = c
            x += widths[j] + pad
        y += h + pad
    img = Image.fromarray(canvas, "RGB")
    if header:
        draw = ImageDraw.Draw(img)
        x = pad
        for j, text in enumerate(list(header)[:ncol]):
            draw.text((x + 2, 1), str(text), fill=(0, 0, 0))
            x += widths[j] + pad
    return img


# ---------------------------------------------------------------------------- HTML


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return "∞" if math.isinf(v) else f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return "; ".join(_fmt(x) for x in v)
    return str(v)


def _is_image(v) -> bool:
    return isinstance(v, str | os.PathLike) and str(v).lower().endswith(IMAGE_EXTS)


def _href(path, out_dir: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        p = Path(os.path.relpath(p, out_dir))
    return quote(p.as_posix())


def _cell(v, out_dir: Path, text_only: bool = False) -> str:
    if _is_image(v) and not text_only:
        src = _href(v, out_dir)
        return f'<td><a href="{src}"><img src="{src}" loading="lazy" alt=""></a></td>'
    text = html.escape(_fmt(v))
    num = isinstance(v, int | float) and not isinstance(v, bool)
    key = f' data-v="{v}"' if num and math.isfinite(v) else ""
    return f'<td class="{"num" if num else "txt"}"{key}>{text}</td>'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}
th{background:#f2f2f2;cursor:pointer;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:256px;max-height:256px;image-rendering:pixelated;display:block}.metrics td{min-width:6em}
"""
_SORT = """
document.querySelectorAll('table.rows th').forEach((th,i)=>th.onclick=()=>{
 const tb=th.closest('table').tBodies[0],rs=[...tb.rows],asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
 const key=r=>{const c=r.cells[i];return c.dataset.v!==undefined?parseFloat(c.dataset.v):c.textContent};
 rs.sort((a,b)=>{const x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(asc?1:-1)});rs.forEach(r=>tb.appendChild(r));});
"""


def write_html_report(
    out_dir: str | os.PathLike,
    rows: Sequence[Mapping],
    metrics: Mapping | None = None,
    title: str = "pixtrans report",
) -> Path:
    """Write ``out_dir/index.html``: the metrics on top, then one table row per image.

    Each row is a mapping with ``name`` and image paths under ``input``, ``output``, ``target`` (absolute or
    relative to ``out_dir``); any other keys become extra columns after those (image paths show as images,
    numbers right-aligned and sortable by clicking the column title). Columns no row fills are left out.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [c for c in BASE_COLUMNS if any(r.get(c) is not None for r in rows)]
    for r in rows:
        columns += [k for k in r if k not in columns and k not in BASE_COLUMNS]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if metrics:
        notes = metrics.get("notes")
        parts.append('<table class="metrics"><tr>')
        parts += [f"<th>{html.escape(str(k))}</th>" for k in metrics if k != "notes"]
        parts.append("</tr><tr>")
        parts += [_cell(math.nan if v is None else v, out_dir) for k, v in metrics.items() if k != "notes"]
        parts.append("</tr></table>")
        if notes:
            items = notes if isinstance(notes, list | tuple) else [notes]
            parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in items) + "</ul>")
    parts.append(f"<p>{len(rows)} images</p>")
    parts.append('<table class="rows"><thead><tr>')
    parts += [f"<th>{html.escape(str(c))}</th>" for c in columns]
    parts.append("</tr></thead><tbody>")
    for r in rows:
        parts.append("<tr>" + "".join(_cell(r.get(c), out_dir, c == "name") for c in columns) + "</tr>")
    parts.append(f"</tbody></table><script>{_SORT}</script></body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
