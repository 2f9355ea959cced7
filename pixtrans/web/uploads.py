"""Untrusted bytes from the browser -> checked arrays: image files (capped in bytes and pixels before decoding,
image types only, truncation caught) and raw base64 id arrays from the drawing canvas.

Every refusal is an :class:`ClientError` with the HTTP status the server answers and a message naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.io import ids_from_image, rgb_from_image
from ..data.labels import check_label_range, decolorize
from ..errors import DataError

FORMATS = {"PNG", "JPEG", "BMP", "TIFF", "WEBP"}
DTYPES = {"u8": np.uint8, "u16": np.dtype("<u2"), "i32": np.dtype("<i4")}


class ClientError(Exception):
    """A refused request: ``status`` (4xx) and a message that says what is wrong and what to do."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def open_image(data: bytes, name: str, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode an uploaded image file; size, type, pixel count and integrity are checked in that order."""
    if len(data) > max_bytes:
        raise ClientError(
            413,
            f"{name}: {len(data) / 2**20:.1f} MB is over the upload limit of "
            f"{max_bytes / 2**20:.1f} MB (--max-upload-mb)",
        )
    if not data:
        raise ClientError(400, f"{name}: the file is empty")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ClientError(
            413,
            f"{name}: over the limit of {max_pixels / 1e6:.1f} MP and refused as a possible decompression bomb ({err})",
        ) from None
    except UnidentifiedImageError:
        raise ClientError(415, f"{name}: not an image; upload a PNG, JPEG, BMP, TIFF or WebP file") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ClientError(400, f"{name}: unreadable image header ({err})") from None
    if im.format not in FORMATS:
        raise ClientError(415, f"{name}: {im.format} files are not accepted; use PNG, JPEG, BMP, TIFF or WebP")
    w, h = im.size
    if w < 1 or h < 1:
        raise ClientError(400, f"{name}: the image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ClientError(
            413,
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} MP is over the limit of {max_pixels / 1e6:.1f} MP "
            "(--max-pixels); downscale it first",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ClientError(413, f"{name}: refused as a decompression bomb ({err})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ClientError(400, f"{name}: truncated or corrupt image ({err}); re-export the file") from None
    return im


def label_from_image(im: Image.Image, name: str, label_nc: int, dontcare: bool, palette: list | None) -> np.ndarray:
    """Class ids (H, W) int64 from a decoded image: a single-channel map of ids, or an RGB map in palette colours."""
    try:
        if im.mode in ("RGB", "RGBA") and palette:
            ids = decolorize(rgb_from_image(im, name), palette, path=name)
        else:
            ids = ids_from_image(im, name, "label map")
        check_label_range(ids, label_nc, dontcare, name)
    except DataError as err:
        raise ClientError(422, str(err)) from None
    return ids


def photo_from_image(im: Image.Image, name: str) -> np.ndarray:
    """uint8 (H, W, 3) from a decoded photo (mode checks of :func:`pixtrans.data.io.rgb_from_image`)."""
    try:
        return rgb_from_image(im, name)
    except DataError as err:
        raise ClientError(422, str(err)) from None


def decode_ids(data: str, width: int, height: int, dtype: str, what: str, max_pixels: int) -> np.ndarray:
    """A base64 little-endian array of ``width*height`` ids (row-major) -> int64 (H, W)."""
    if width * height > max_pixels:
        raise ClientError(413, f"{what}: {width}x{height} is over the limit of {max_pixels / 1e6:.1f} MP")
    if dtype not in DTYPES:
        raise ClientError(422, f"{what}: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(422, f"{what}: data is not valid base64") from None
    dt = np.dtype(DTYPES[dtype])
    if len(raw) != width * height * dt.itemsize:
        raise ClientError(
            422,
            f"{what}: {len(raw)} bytes do not hold {width}x{height} {dtype} values "
            f"({width * height * dt.itemsize} bytes expected)",
        )
    return np.frombuffer(raw, dtype=dt).reshape(height, width).astype(np.int64)


def encode_ids(ids: np.ndarray) -> dict:
    """int (H, W) -> the JSON form :func:`decode_ids` reads (smallest dtype that holds the values)."""
    lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, 0)
    dtype = "i32" if lo < 0 or hi >= 65536 else "u16" if hi >= 256 else "u8"
    raw = np.ascontiguousarray(ids.astype(DTYPES[dtype])).tobytes()
    return {
        "width": int(ids.shape[1]),
        "height": int(ids.shape[0]),
        "dtype": dtype,
        "data": base64.b64encode(raw).decode("ascii"),
    }


def check_ids(ids: np.ndarray, what: str, label_nc: int, dontcare: bool) -> None:
    """Label ids in range for a model, else a 422 naming the bad values."""
    try:
        check_label_range(ids, label_nc, dontcare, what)
    except DataError as err:
        raise ClientError(422, str(err)) from None
