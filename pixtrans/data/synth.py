"""A built-in synthetic label -> photo dataset: procedural street scenes, fast and deterministic.

Every scene has a sky, a road converging to a vanishing point, sidewalks, a row of buildings, trees, poles,
cars and people. Each class has several appearance styles (car paint colours, asphalt vs cobblestone,
brick vs concrete vs glass facades, day / sunset / overcast skies...) drawn per scene or per instance, so a
style encoder has something to learn, while the label map alone fixes the layout.

Files (the ``synth`` / ``pix2pixhd`` layout)::

    out/classes.json                    {"label_nc", "names", "colors", "things", "styles", "size", "seed", ...}
    out/styles.json                     the appearance style drawn for every scene (sky, road, cars...)
    out/{train,test}_label/NAME.png     8-bit L, class ids 0..label_nc-1
    out/{train,test}_inst/NAME.png      16-bit, Cityscapes style: class*1000+k for things, class id for stuff
    out/{train,test}_img/NAME.png       RGB photo
    out/aligned/{train,test}/NAME.png   (aligned=True) A|B side by side: A = colourised label, B = photo

The same arguments always give byte-identical files (one numpy Generator per image, seeded from
``(seed, split, index)``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .palettes import SYNTH_CLASSES, SYNTH_COLORS, SYNTH_STYLES, SYNTH_THINGS

SKY, ROAD, SIDEWALK, BUILDING, VEGETATION, CAR, PERSON, POLE = range(8)
LABEL_NC = len(SYNTH_CLASSES)


# ---------------------------------------------------------------------------- texture helpers
def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1] of shape (h, w): a coarse random grid, bilinearly upsampled."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    rows = grid[:, x0] * (1 - fx) + grid[:, x0 + 1] * fx  # (gh, w): interpolate along x first
    return rows[y0] * (1 - fy) + rows[y0 + 1] * fy


def _blend(img: np.ndarray, mask: np.ndarray, tex: np.ndarray) -> None:
    """Write texture ``tex`` ((H, W, 3) or (3,)) into ``img`` where ``mask`` is true (in place)."""
    if tex.ndim == 1:
        img[mask] = tex
    else:
        img[mask] = tex[mask]


def _shade(color, factor: np.ndarray) -> np.ndarray:
    """(3,) colour times an (H, W) brightness factor -> (H, W, 3)."""
    return np.asarray(color, np.float32)[None, None, :] * factor[..., None]


def _grid_lines(yy: np.ndarray, xx: np.ndarray, ch: float, cw: float, thick: float, stagger: bool) -> np.ndarray:
    """Mortar lines of a brick / tile pattern with cells ch x cw (rows staggered by half a cell)."""
    row = np.floor(yy / ch)
    xs = xx + (row % 2) * (cw / 2) if stagger else xx
    return ((yy % ch) < thick) | ((xs % cw) < thick)


# ---------------------------------------------------------------------------- class textures
def _sky(rng, yy, xx, h, w, horizon):
    style = int(rng.integers(3))
    t = np.clip(yy / max(horizon, 1.0), 0, 1)[..., None]
    top, bottom = [
        ((40, 90, 200), (150, 200, 245)),  # clear day
        ((70, 40, 110), (250, 150, 70)),  # sunset
        ((120, 125, 135), (190, 190, 195)),  # overcast
    ][style]
    img = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    clouds = _noise(rng, h, w, max(4.0, w / 6))
    amount = (0.25, 0.1, 0.35)[style]
    img += (clouds[..., None] - 0.5) * 255 * amount
    return img, style


def _road(rng, yy, xx, h, w, horizon, cx):
    style = int(rng.integers(2))
    depth = np.clip((yy - horizon) / max(h - horizon, 1.0), 0.02, 1)
    if style == 0:  # asphalt with a dashed centre line
        base = 70 + 15 * rng.random()
        tex = base + 25 * (_noise(rng, h, w, 2.0) - 0.5)
        img = np.repeat(tex[..., None], 3, axis=2)
        # dashed centre line: width grows with depth, dashes in perspective
        lane = np.abs(xx - cx) < 0.012 * w * depth * 3 + 0.4
        dash = (np.log(depth + 0.05) * 6) % 1.0 < 0.5
        img[lane & dash] = (225, 225, 210)
    else:  # cobblestone: small staggered stones with dark joints
        cell = max(2.0, 0.03 * w) * (0.3 + depth)
        stones = 110 + 40 * _noise(rng, h, w, 1.5)
        joints = _grid_lines(yy / (0.3 + depth), xx / (0.3 + depth), cell, cell * 1.4, 1.0, True)
        img = _shade((1.0, 0.92, 0.85), stones)
        img[joints] *= 0.45
    return img, style


def _sidewalk(rng, yy, xx, h, w):
    style = int(rng.integers(2))
    color = [(175, 175, 170), (185, 110, 95)][style]  # concrete slabs / red pavers
    size = max(3.0, 0.06 * w) if style == 0 else max(2.0, 0.03 * w)
    factor = 0.9 + 0.2 * _noise(rng, h, w, 2.0)
    img = _shade(color, factor)
    img[_grid_lines(yy, xx, size, size * (1 if style == 0 else 2), 1.0, style == 1)] *= 0.7
    return img, style


def _building(rng, yy, xx, x0, y0, x1, h, w):
    """Texture of one facade (on its bounding-box grids ``yy``, ``xx``) whose top-left corner is (x0, y0)."""
    style = int(rng.integers(3))
    ly, lx = yy - y0, xx - x0
    bh, bw = yy.shape
    if style == 0:  # brick
        base = np.asarray((150, 65, 45), np.float32) * (0.85 + 0.3 * rng.random())
        img = _shade(base / 255, 255 * (0.85 + 0.3 * _noise(rng, bh, bw, 1.5)))
        img[_grid_lines(ly, lx, max(2.0, 0.02 * h), max(4.0, 0.04 * w), 1.0, True)] = (200, 190, 175)
        window_color, win = (40, 45, 60), 0.5
    elif style == 1:  # concrete
        grey = 150 + 50 * rng.random()
        img = _shade((1, 1, 0.97), grey * (0.9 + 0.2 * _noise(rng, bh, bw, 3.0)))
        window_color, win = (60, 75, 95), 0.45
    else:  # glass tower
        img = _shade((0.55, 0.75, 0.9), 200 * (0.8 + 0.2 * np.clip(ly / max(h, 1), 0, 1)))
        window_color, win = (25, 50, 85), 0.8
    # window grid
    cw = max(3.0, (x1 - x0) / max(2, int(rng.integers(2, 6))))
    ch = max(3.0, 0.08 * h)
    wx, wy = (lx % cw) / cw, (ly % ch) / ch
    windows = (wx > (1 - win) / 2) & (wx < (1 + win) / 2) & (wy > 0.25) & (wy < 0.75) & (ly > ch * 0.5)
    img[windows] = window_color
    return img, style


def _vegetation(rng, h, w):
    style = int(rng.integers(3))
    color = [(45, 110, 40), (110, 160, 60), (190, 110, 35)][style]  # dark green, light green, autumn
    leaves = 0.55 + 0.7 * _noise(rng, h, w, 1.5) * (0.6 + 0.4 * _noise(rng, h, w, 5.0))
    return _shade(color, leaves), style


CAR_COLORS = [(200, 30, 30), (30, 60, 190), (235, 235, 235), (235, 200, 30), (25, 25, 25), (150, 155, 160)]
SHIRT_COLORS = [(200, 40, 40), (40, 90, 200), (40, 150, 60), (240, 240, 240), (30, 30, 30)]


# ---------------------------------------------------------------------------- one scene
def _window(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> tuple[slice, slice]:
    """Row and column slices of the pixel box [x0, x1) x [y0, y1), clipped to the image (may be empty)."""
    ya, yb = max(0, int(np.floor(y0))), min(h, int(np.ceil(y1)) + 1)
    xa, xb = max(0, int(np.floor(x0))), min(w, int(np.ceil(x1)) + 1)
    return slice(ya, max(ya, yb)), slice(xa, max(xa, xb))


def _scene(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Return (label uint8 (h, w), instances uint16 (h, w), photo uint8 (h, w, 3), styles)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    label = np.full((h, w), SKY, np.uint8)
    inst = np.full((h, w), SKY, np.uint16)
    styles: dict = {"building": [], "car": [], "person": []}

    horizon = h * rng.uniform(0.35, 0.55)
    cx = w * rng.uniform(0.35, 0.65)
    sky_img, styles["sky"] = _sky(rng, yy, xx, h, w, horizon)
    img = sky_img

    # ground: road trapezoid, sidewalks beside it, vegetation (grass) outside
    below = yy >= horizon
    depth = np.clip((yy - horizon) / max(h - horizon, 1.0), 0, None)
    half_road = (0.02 + rng.uniform(0.45, 0.7) * depth) * w
    side = (0.01 + rng.uniform(0.18, 0.3) * depth) * w
    dist = np.abs(xx - cx)
    road = below & (dist <= half_road)
    sidewalk = below & ~road & (dist <= half_road + side)
    grass = below & ~road & ~sidewalk
    veg_img, veg_style = _vegetation(rng, h, w)
    road_img, styles["road"] = _road(rng, yy, xx, h, w, horizon, cx)
    side_img, styles["sidewalk"] = _sidewalk(rng, yy, xx, h, w)
    for mask, cls, tex in ((road, ROAD, road_img), (sidewalk, SIDEWALK, side_img), (grass, VEGETATION, veg_img)):
        label[mask] = cls
        inst[mask] = cls
        _blend(img, mask, tex)
    styles["vegetation"] = veg_style

    # buildings along the horizon, left to right, each with its own facade style
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = w * rng.uniform(0.12, 0.3)
        top = horizon - h * rng.uniform(0.12, 0.4)
        bottom = horizon + h * 0.02
        if rng.random() < 0.85:
            win = _window(x, top, x + bw, bottom, w, h)
            by, bx = yy[win], xx[win]
            mask = (bx >= x) & (bx < x + bw) & (by >= top) & (by < bottom) & (label[win] == SKY)
            tex, st = _building(rng, by, bx, x, top, x + bw, h, w)
            label[win][mask] = BUILDING
            inst[win][mask] = BUILDING
            _blend(img[win], mask, tex)
            styles["building"].append(st)
        x += bw + w * rng.uniform(0, 0.05)

    # tree crowns in front of the buildings
    for _ in range(int(rng.integers(1, 4))):
        tx, ty = w * rng.random(), horizon - h * rng.uniform(0.0, 0.15)
        r = h * rng.uniform(0.06, 0.14)
        win = _window(tx - r, ty - r, tx + r, horizon + h * 0.03, w, h)
        by, bx = yy[win], xx[win]
        mask = (bx - tx) ** 2 + ((by - ty) * 1.2) ** 2 < r * r
        trunk = (np.abs(bx - tx) < max(0.6, r * 0.12)) & (by >= ty) & (by < horizon + h * 0.03)
        mask |= trunk
        label[win][mask] = VEGETATION
        inst[win][mask] = VEGETATION
        _blend(img[win], mask & ~trunk, veg_img[win])
        img[win][trunk] = (85, 60, 40)

    # objects, far to near so nearer ones occlude: poles on sidewalks, people on sidewalks, cars on the road
    objects = []
    for _ in range(int(rng.integers(0, 3))):
        objects.append((POLE, rng.uniform(0.1, 1.0)))
    for _ in range(int(rng.integers(0, 4))):
        objects.append((PERSON, rng.uniform(0.15, 1.0)))
    for _ in range(int(rng.integers(1, 5))):
        objects.append((CAR, rng.uniform(0.1, 1.0)))
    objects.sort(key=lambda o: o[1])
    counts = {CAR: 0, PERSON: 0, POLE: 0}
    for cls, d in objects:
        gy = horizon + d * (h - horizon)  # ground contact row
        hr = (0.02 + 0.6 * d) * w  # road half width at that row (approx.)
        s = 0.1 + 0.9 * d  # perspective scale
        unit = 0.28 * w * s  # a car's width at this depth; everything else is sized from it
        if cls == CAR:
            lane = rng.choice([-0.5, 0.5])
            ox = cx + lane * hr * rng.uniform(0.5, 1.1)
            cw_, ch_ = unit, unit * 0.5
            win = _window(ox - cw_ / 2, gy - ch_, ox + cw_ / 2, gy, w, h)
            by, bx, im = yy[win], xx[win], img[win]
            body = (np.abs(bx - ox) < cw_ / 2) & (by < gy) & (by >= gy - ch_ * 0.55)
            cabin = (np.abs(bx - ox) < cw_ * 0.32) & (by < gy - ch_ * 0.5) & (by >= gy - ch_)
            mask = body | cabin
            color_id = int(rng.integers(len(CAR_COLORS)))
            paint = _shade(CAR_COLORS[color_id], 0.75 + 0.35 * np.clip((gy - by) / max(ch_, 1), 0, 1))
            _blend(im, mask, paint)
            im[cabin & (np.abs(bx - ox) < cw_ * 0.27) & (by >= gy - ch_ * 0.9)] = (45, 55, 70)  # windows
            wheels = ((np.abs(np.abs(bx - ox) - cw_ * 0.3) < cw_ * 0.1) & (by >= gy - ch_ * 0.15)) & body
            im[wheels] = (20, 20, 20)
            styles["car"].append(color_id)
        elif cls == PERSON:
            sgn = rng.choice([-1.0, 1.0])
            ox = cx + sgn * (hr + 0.1 * w * s)
            ph = unit * 0.9
            pw = ph * 0.13 + 0.5
            hr_ = ph * 0.12 + 0.5
            win = _window(ox - max(pw, hr_), gy - ph * 0.88 - hr_, ox + max(pw, hr_), gy, w, h)
            by, bx, im = yy[win], xx[win], img[win]
            torso = (np.abs(bx - ox) < pw) & (by < gy) & (by >= gy - ph * 0.8)
            head = (bx - ox) ** 2 + (by - (gy - ph * 0.88)) ** 2 < hr_**2
            mask = torso | head
            shirt = int(rng.integers(len(SHIRT_COLORS)))
            im[torso & (by < gy - ph * 0.4)] = SHIRT_COLORS[shirt]
            im[torso & (by >= gy - ph * 0.4)] = (50, 50, 80)  # trousers
            im[head] = (225, 180, 140)
            styles["person"].append(shirt)
        else:  # pole
            sgn = rng.choice([-1.0, 1.0])
            ox = cx + sgn * (hr + 0.18 * w * s)
            ph, pw = unit * 2.2, unit * 0.03 + 0.5
            win = _window(ox - pw, gy - ph, ox + pw, gy, w, h)
            by, bx = yy[win], xx[win]
            mask = (np.abs(bx - ox) < pw) & (by < gy) & (by >= gy - ph)
            img[win][mask] = (110, 110, 115)
        if not mask.any():
            continue
        label[win][mask] = cls
        if cls in SYNTH_THINGS:
            inst[win][mask] = cls * 1000 + counts[cls]
            counts[cls] += 1
        else:
            inst[win][mask] = cls

    # a little sensor noise and a global light level per scene
    light = rng.uniform(0.85, 1.1)
    img = img * light + (rng.random((h, w, 1), dtype=np.float32) - 0.5) * 6
    photo = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return label, inst, photo, styles


# ---------------------------------------------------------------------------- files
def _size(size) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        w = h = int(size)
    else:
        w, h = (int(v) for v in size)
    if w < 8 or h < 8:
        raise ValueError(f"synthetic images must be at least 8x8 pixels, got {w}x{h}")
    return w, h


def colorize_synth(label: np.ndarray) -> np.ndarray:
    """Colourised synthetic label map (uint8 RGB) with the classes.json colours."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:LABEL_NC] = SYNTH_COLORS
    return lut[label]


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, format="PNG", optimize=False, compress_level=1)


def generate(
    out: str | Path,
    n: int = 32,
    size: int | tuple[int, int] = 64,
    seed: int = 0,
    n_test: int | None = None,
    aligned: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> Path:
    """Write ``n`` train and ``n_test`` (default ``max(4, n // 4)``) test scenes of ``size`` (int or (w, h)) to ``out``.

    Returns the output folder. ``progress``: True prints a tqdm bar, a callable gets ``(done, total)``.
    """
    if n < 0 or (n_test is not None and n_test < 0):
        raise ValueError("n and n_test must be >= 0")
    w, h = _size(size)
    n_test = max(4, n // 4) if n_test is None else int(n_test)
    out = Path(out)
    splits = (("train", n), ("test", n_test))
    for split, _ in splits:
        for kind in ("label", "inst", "img"):
            (out / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
        if aligned:
            (out / "aligned" / split).mkdir(parents=True, exist_ok=True)
    total = n + n_test
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="synth", unit="img")
    done = 0
    styles = {}
    for split_id, (split, count) in enumerate(splits):
        for i in range(count):
            rng = np.random.default_rng([seed, split_id, i])
            label, inst, photo, st = _scene(rng, w, h)
            name = f"{split}_{i:05d}"
            styles[name] = st
            _save_png(label, out / f"{split}_label" / f"{name}.png")
            _save_png(inst, out / f"{split}_inst" / f"{name}.png")
            _save_png(photo, out / f"{split}_img" / f"{name}.png")
            if aligned:
                ab = np.concatenate([colorize_synth(label), photo], axis=1)
                _save_png(ab, out / "aligned" / split / f"{name}.png")
            done += 1
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(done, total)
    if bar is not None:
        bar.close()
    meta = {
        "label_nc": LABEL_NC,
        "names": list(SYNTH_CLASSES),
        "colors": [list(c) for c in SYNTH_COLORS],
        "things": list(SYNTH_THINGS),
        "styles": SYNTH_STYLES,
        "size": [w, h],
        "seed": seed,
        "n": n,
        "n_test": n_test,
    }
    (out / "classes.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "styles.json").write_text(json.dumps(styles, sort_keys=True) + "\n")
    return out
