"""Safe image loading: the one door every image (data builder, predictor, Space, mapper) comes through.

Real photomicrograph folders hold 16-bit TIFFs, CMYK scans, EXIF-rotated phone photos, truncated
uploads and the odd text file named ``.png``. Each is converted to 8-bit RGB or refused with an
``ImageLoadError`` whose ``reason`` is short enough to put in a report or a UI message.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from . import inputs

#: Default pixel limit per image: the shared input policy's (see ``hf_minerals.inputs``).
DEFAULT_MAX_PIXELS = inputs.MAX_PIXELS
IMAGE_EXTENSIONS = inputs.IMAGE_EXTENSIONS
is_image_file = inputs.is_image_file

# Never decode partially: a truncated file must be an error, not a grey bottom half.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageLoadError(ValueError):
    """An image that cannot be used; ``reason`` says why in a few words."""

    def __init__(self, reason: str, source: str | None = None):
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)


def array_to_rgb8(arr: np.ndarray) -> np.ndarray:
    """(H, W[, C]) pixels of any depth -> (H, W, 3) uint8: the one conversion every reader uses.

    16-bit data are scaled over the container's range (x * 255 / 65535, not clipped and not ``>> 8``
    rounding differently), floats over [0, 1], other integers by their maximum; grey is repeated to RGB;
    alpha composites on black (transparent areas carry no specimen: the colour of gangue and pits).
    """
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageLoadError(f"array of shape {arr.shape} is not an HxW or HxWxC image")
    if arr.dtype == np.uint8:
        scaled = arr
    else:
        top = 65535.0 if arr.dtype == np.uint16 else (1.0 if arr.dtype.kind == "f" else float(arr.max() or 1))
        scaled = np.clip(np.nan_to_num(arr.astype(np.float64)) / top * 255.0, 0, 255).astype(np.uint8)
    c = scaled.shape[-1]
    colour = scaled[..., :1] if c <= 2 else scaled[..., :3]
    if c in (2, 4):
        alpha = scaled[..., -1:].astype(np.uint16)
        colour = ((colour.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    if colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    return np.ascontiguousarray(colour)


def _to_uint8_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high bit depths instead of clipping them."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "F":
        arr = np.asarray(img).astype(np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(array_to_rgb8(arr), "RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        if mode.startswith("I;16") or arr.max() <= 65535:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)  # 16-bit data (even opened as 32-bit): full range
        return Image.fromarray(array_to_rgb8(arr), "RGB")
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        return Image.fromarray(array_to_rgb8(np.asarray(img.convert("RGBA" if mode.startswith("RGB") else "LA"))), "RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _open_checked(fp: BinaryIO, max_pixels: int, source: str | None, min_decode_side: int | None = None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageLoadError(inputs.too_many_pixels(w, h, max_pixels), source)
            if min_decode_side and img.format == "JPEG" and min(w, h) >= 2 * min_decode_side:
                # JPEG can decode at 1/2, 1/4 or 1/8 scale in the DCT domain (an area average): 4-30x less
                # work for a 3-9 MP photo that a model sees at 224 px. The exact resize follows.
                img.draft(img.mode, (min_decode_side, min_decode_side))
            img.load()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"too many pixels: decompression bomb refused ({exc})", source) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError("not an image (unrecognised format)", source) from exc
    except (PermissionError, IsADirectoryError, FileNotFoundError) as exc:
        raise ImageLoadError(inputs.os_reason(exc), source) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).lower()
        reason = "truncated or corrupt image" if ("truncat" in msg or "broken" in msg or "eof" in msg) else f"unreadable image ({exc})"
        raise ImageLoadError(reason, source) from exc
    return img


def load_image(
    source: str | os.PathLike | bytes | BinaryIO | Image.Image | np.ndarray,
    *,
    max_pixels: int | None = None,
    min_side: int | None = None,
    max_bytes: int | None = None,
    notes: list[str] | None = None,
    min_decode_side: int | None = None,
) -> Image.Image:
    """Load anything image-like as an 8-bit RGB PIL image, EXIF orientation applied.

    Limits default to the shared input policy (``hf_minerals.inputs.limits()``); the smallest side applies
    by default to files, bytes and streams, not to images already in memory. Raises
    ``ImageLoadError`` (never a bare PIL/OSError) for a path that cannot be read (permission, link, pipe,
    folder), an empty, corrupt, truncated, non-image, oversized or too-small input, or something that is
    not an image at all. Conversions worth telling the user about (only the first frame of a multi-frame
    file is used) are appended to ``notes`` when given.

    ``min_decode_side``: a JPEG file whose shorter side is at least twice this may be decoded at a
    reduced scale (Pillow's ``draft``), never below this many px a side (nor below ``min_side``) - for
    consumers that resize to that size anyway (the predictor). ``max_pixels`` applies to the full size.
    """
    policy = inputs.limits()
    max_pixels = policy.max_pixels if max_pixels is None else max_pixels
    if min_side is None:  # files and uploads obey the policy; in-memory images are the caller's business
        min_side = 1 if isinstance(source, (np.ndarray, Image.Image)) else policy.min_side
    max_bytes = policy.max_bytes if max_bytes is None else max_bytes
    name = str(source) if isinstance(source, (str, os.PathLike)) else None
    if isinstance(source, np.ndarray):
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > max_pixels:
            raise ImageLoadError(inputs.too_many_pixels(source.shape[1], source.shape[0], max_pixels))
        if source.dtype.kind not in "uifb":
            raise ImageLoadError(f"array of dtype {source.dtype} is not an image")
        img = Image.fromarray(array_to_rgb8(source), "RGB")
    elif isinstance(source, Image.Image):
        w, h = source.size
        if w * h > max_pixels:
            raise ImageLoadError(inputs.too_many_pixels(w, h, max_pixels))
        img = _to_uint8_rgb(ImageOps.exif_transpose(source) or source)
    elif isinstance(source, (bytes, bytearray, str, os.PathLike)) or hasattr(source, "read"):
        if isinstance(source, (bytes, bytearray)):
            if len(source) == 0:
                raise ImageLoadError("empty file (0 bytes)")
            if len(source) > max_bytes:
                raise ImageLoadError(inputs.too_large(len(source), max_bytes))
            fp: BinaryIO = io.BytesIO(source)
        elif isinstance(source, (str, os.PathLike)):
            problem = inputs.path_problem(source, max_bytes)
            if problem:
                raise ImageLoadError(problem, name)
            try:
                fp = Path(source).open("rb")
            except OSError as exc:
                raise ImageLoadError(inputs.os_reason(exc), name) from exc
        else:
            fp = source
        try:
            decode_side = max(min_decode_side, min_side) if min_decode_side else None
            raw = _open_checked(fp, max_pixels, name, decode_side)
            if getattr(raw, "n_frames", 1) > 1 and notes is not None:
                notes.append(f"multi-frame file ({raw.n_frames} frames): first frame used")
            try:
                raw = ImageOps.exif_transpose(raw) or raw
            except Exception:  # noqa: BLE001 - broken EXIF must not lose an otherwise good image
                pass
            img = _to_uint8_rgb(raw)
        finally:
            if isinstance(source, (str, os.PathLike)):
                fp.close()
    else:
        raise ImageLoadError(f"not an image or a file path (got {type(source).__name__})")
    if min(img.size) < min_side:
        raise ImageLoadError(inputs.too_small(img.size[0], img.size[1], min_side), name)
    return img


GREY_MODES = frozenset({"L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "LA", "La"})
ALPHA_MODES = frozenset({"RGBA", "PA", "RGBa"})


def mode_note(path: str | os.PathLike) -> str:
    """A word for the user on how ``load_image`` converted this file (16-bit, CMYK, alpha, greyscale),
    read from the header only; "" for plain RGB or a file whose header cannot be read again."""
    try:
        with Image.open(path) as im:
            mode = im.mode
    except Exception:  # noqa: BLE001 - the image already loaded; the note is a nicety
        return ""
    if mode == "RGB":
        return ""
    if mode in GREY_MODES:
        return (f"Input was greyscale ({mode}); converted to RGB. Colour is the main cue for opaque "
                "minerals, so expect lower accuracy.")
    if mode in ALPHA_MODES:
        return f"Input mode {mode} converted to 8-bit RGB (transparent areas shown as black)."
    return f"Input mode {mode} converted to 8-bit RGB."
