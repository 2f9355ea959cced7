"""Reading photos, label maps and instance maps, with errors that name the file and say what to do.

- :func:`read_rgb`: 8-bit photo -> uint8 (H, W, 3). Grey / palette / CMYK photos are converted; opaque RGBA is
  converted, RGBA with transparent pixels and 16/32-bit images are errors.
- :func:`read_label`: single-channel class ids -> int64 (H, W). 8-bit L, palette PNGs (the index values are the
  ids) and 16-bit maps are accepted; RGB(A) maps and formats that can change ids (JPEG, WebP, GIF, ..., judged by
  the decoded format, not the file name; see :data:`ID_FORMATS`) are errors.
- :func:`read_instance`: like :func:`read_label`; 16-bit Cityscapes ``instanceIds`` (class*1000+k) are the norm.
- :func:`load_input`: a user file as the model ``input`` tensor (used by the translator).

Every failure is a :class:`~pixtrans.errors.DataError` (unreadable, truncated, decompression bomb, wrong mode).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .labels import check_label_range, decolorize

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LABEL_EXTS = (".png", ".bmp", ".tif", ".tiff")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _open(path: str | Path) -> Image.Image:
    """Open and fully decode an image (so truncated files fail here, not later)."""
    path = Path(path)
    if not path.is_file():
        _dangling(path)
        raise DataError(path, "file not found" if not path.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(
            path,
            f"image is too large to decode safely ({err})",
            "if the file is trusted, raise PIL.Image.MAX_IMAGE_PIXELS or downscale it first",
        ) from None
    except UnidentifiedImageError:
        hint = "use PNG for label maps, PNG or JPEG for photos"
        raise DataError(path, "not an image file PIL can read", hint) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise DataError(path, f"unreadable or truncated image ({err})", "re-export or re-download the file") from None
    return im


def _dangling(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise DataError(path, f"dangling symlink (its target {os.readlink(path)} does not exist)", "fix or remove it")


def _alpha_ok(im: Image.Image, path: Path) -> None:
    alpha = np.asarray(im.getchannel("A"))
    if alpha.size and int(alpha.min()) < 255:
        raise DataError(
            path,
            f"{im.mode} image with transparent pixels (alpha min {int(alpha.min())})",
            "flatten it onto a background (photos must be opaque RGB); transparency would be silently dropped",
        )


def rgb_from_image(im: Image.Image, path: str | Path = "<image>") -> np.ndarray:
    """A decoded PIL image as a uint8 (H, W, 3) photo, with the mode checks of :func:`read_rgb`."""
    path = Path(str(path))
    mode = im.mode
    if mode in _SIXTEEN_BIT or mode in ("F", "I;32", "RGB;16") or mode.startswith("I;"):
        raise DataError(
            path,
            f"{mode} image ({'32-bit float' if mode == 'F' else '16/32-bit integer'}) where an 8-bit photo is expected",
            "convert it to 8-bit RGB (if it is a label or instance map, it belongs in the label/instance folder)",
        )
    if mode == "P" and ("transparency" in im.info):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        _alpha_ok(im.convert("RGBA") if mode not in ("RGBA", "LA") else im, path)
    if mode != "RGB":
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as err:
            raise DataError(path, f"cannot convert {mode} image to RGB ({err})", "save it as 8-bit RGB") from None
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(path, f"unexpected decoded shape {arr.shape}", "save it as 8-bit RGB")
    return np.ascontiguousarray(arr)


def read_rgb(path: str | Path) -> np.ndarray:
    """A photo as uint8 (H, W, 3)."""
    return rgb_from_image(_open(path), path)


def ids_from_image(im: Image.Image, path: str | Path = "<image>", what: str = "label map") -> np.ndarray:
    """A decoded single-channel PIL image as int64 ids (H, W); RGB(A) is an error with a hint."""
    path = Path(str(path))
    _lossless_ids(im, path, what)
    mode = im.mode
    if mode in ("L", "P") or mode in _SIXTEEN_BIT or mode.startswith("I;"):
        arr = np.asarray(im)  # P: the palette indices are the ids
    elif mode == "1":
        arr = np.asarray(im.convert("L")) // 255
    elif mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
        hint = (
            f"{what}s must be single-channel class ids (8-bit L or palette PNG, 16-bit for instances), "
            "not colour images"
        )
        if mode in ("RGB", "RGBA"):
            a = np.asarray(im)
            if a.ndim == 3 and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
                hint += "; its three channels are equal, so save it as grey: Image.open(p).convert('L').save(p)"
            else:
                hint += "; a colourised map needs its colours mapped back to ids (labels.decolorize with the palette)"
        raise DataError(path, f"{what} is a {mode} image", hint)
    else:
        raise DataError(path, f"{what} has unsupported mode {mode}", "save it as an 8-bit L or 16-bit PNG of ids")
    return np.asarray(arr, dtype=np.int64)


# Formats whose decoded values are exactly the stored ids (None: an image made in memory, not read from a file).
ID_FORMATS = ("PNG", "BMP", "TIFF", "PPM", None)


def _lossless_ids(im: Image.Image, path: Path, what: str) -> None:
    """Refuse a label/instance map whose real format (PIL's, not the file name's) can change ids: lossy codecs
    (JPEG, WebP, JPEG 2000, JPEG-compressed TIFF) and formats whose writers may reorder or merge palette entries
    (GIF and the rest outside :data:`ID_FORMATS`)."""
    fmt = im.format
    compression = str(im.info.get("compression", "")).lower() if fmt == "TIFF" else ""
    if fmt in ID_FORMATS and "jpeg" not in compression:
        return
    kind = "lossy" if fmt in ("JPEG", "WEBP", "JPEG2000", "MPO") or "jpeg" in compression else "not index-preserving"
    raise DataError(
        path,
        f"{what} is a {fmt}{' (JPEG-compressed)' if compression else ''} file ({kind}: its ids can differ from the "
        "ones drawn)",
        "save label and instance maps as PNG (8-bit L, palette or 16-bit), whatever the file name says",
    )


def read_label(path: str | Path) -> np.ndarray:
    """Class ids (H, W) int64 from an 8-bit L / palette / 16-bit PNG."""
    return ids_from_image(_open(path), path, "label map")


def read_instance(path: str | Path) -> np.ndarray:
    """Instance ids (H, W) int64, e.g. 16-bit Cityscapes ``instanceIds`` (class*1000+k for things)."""
    return ids_from_image(_open(path), path, "instance map")


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only (no decode)."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        _dangling(Path(path))
        raise DataError(path, "file not found") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(path, f"unreadable image ({err})") from None


def to_tensor_image(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.require(arr, np.float32, ["C", "W"])).permute(2, 0, 1)
    return t.div(127.5).sub_(1.0).contiguous()


def to_tensor_ids(arr: np.ndarray) -> torch.Tensor:
    """int (H, W) -> int64 (1, H, W)."""
    return torch.from_numpy(np.require(arr, np.int64, ["C", "W"]))[None]


def grey(arr: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 (H, W, 1) luminance (ITU-R 601, like PIL's convert('L'))."""
    y = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    return np.clip(np.round(y), 0, 255).astype(np.uint8)[..., None]


def load_input(
    path: str | Path,
    kind: str,
    label_nc: int = 0,
    contain_dontcare: bool = False,
    input_nc: int = 3,
    palette: list | None = None,
) -> torch.Tensor:
    """Read a user file as a model ``input``: int64 (1, H, W) ids (``kind="label"``) or float (C, H, W) in [-1, 1].

    For labels, a colourised RGB map is accepted when ``palette`` is given (exact colours -> ids).
    """
    im = _open(path)
    if kind == "label":
        if im.mode in ("RGB", "RGBA") and palette:
            rgb = rgb_from_image(im, path)
            ids = decolorize(rgb, palette, path=path)
        else:
            ids = ids_from_image(im, path, "label map")
        check_label_range(ids, label_nc, contain_dontcare, path)
        return to_tensor_ids(ids)
    if kind == "image":
        arr = rgb_from_image(im, path)
        if input_nc == 1:
            arr = grey(arr)
        elif input_nc != 3:
            raise DataError(path, f"cannot make a {input_nc}-channel input from a photo", "use input_nc 1 or 3")
        return to_tensor_image(arr)
    raise ValueError(f"kind must be 'label' or 'image', got {kind!r}")
