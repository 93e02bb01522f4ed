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

#: Default pixel limit per image (a 3396x2547 photomicrograph is 8.6 MP; stitched mosaics use the mapper).
DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})

# Never decode partially: a truncated file must be an error, not a grey bottom half.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageLoadError(ValueError):
    """An image that cannot be used; ``reason`` says why in a few words."""

    def __init__(self, reason: str, source: str | None = None):
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for file names with an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_uint8_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high bit depths instead of clipping them."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        else:
            # 16-bit data: use the container's full range; 32-bit ints: scale by the observed max.
            top = 65535.0 if mode.startswith("I;16") or arr.max() <= 65535 else float(arr.max())
            arr = arr / top * 255.0
        grey = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        # Transparent regions carry no specimen: composite on black, the colour of gangue/pits.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _open_checked(fp: BinaryIO, max_pixels: int, source: str | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            w, h = img.size
            if w * h > max_pixels:
                raise ImageLoadError(f"too many pixels ({w}x{h} > {max_pixels:,} limit)", source)
            img.load()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"decompression bomb refused ({exc})", source) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError("not an image (unrecognised format)", source) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).lower()
        reason = "truncated or corrupt image" if ("truncat" in msg or "broken" in msg or "eof" in msg) else f"unreadable image ({exc})"
        raise ImageLoadError(reason, source) from exc
    return img


def load_image(
    source: str | os.PathLike | bytes | BinaryIO | Image.Image | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> Image.Image:
    """Load anything image-like as an 8-bit RGB PIL image, EXIF orientation applied.

    Raises ``ImageLoadError`` (never a bare PIL/OSError) for empty, corrupt, truncated, non-image,
    oversized or too-small input.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else None
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ImageLoadError(f"array of shape {source.shape} is not an HxW or HxWxC image")
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        if arr.dtype != np.uint8:
            top = 65535.0 if arr.dtype == np.uint16 else (1.0 if arr.dtype.kind == "f" else float(arr.max() or 1))
            arr = np.clip(arr.astype(np.float64) / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")
    elif isinstance(source, Image.Image):
        w, h = source.size
        if w * h > max_pixels:
            raise ImageLoadError(f"too many pixels ({w}x{h} > {max_pixels:,} limit)")
        img = _to_uint8_rgb(ImageOps.exif_transpose(source) or source)
    else:
        if isinstance(source, (bytes, bytearray)):
            if len(source) == 0:
                raise ImageLoadError("empty file (0 bytes)")
            fp: BinaryIO = io.BytesIO(source)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise ImageLoadError("file not found", name)
            if path.stat().st_size == 0:
                raise ImageLoadError("empty file (0 bytes)", name)
            fp = path.open("rb")
        else:
            fp = source
        try:
            raw = _open_checked(fp, max_pixels, name)
            try:
                raw = ImageOps.exif_transpose(raw) or raw
            except Exception:  # noqa: BLE001 - broken EXIF must not lose an otherwise good image
                pass
            img = _to_uint8_rgb(raw)
        finally:
            if isinstance(source, (str, os.PathLike)):
                fp.close()
    if min(img.size) < min_side:
        raise ImageLoadError(f"image too small ({img.size[0]}x{img.size[1]}; at least {min_side} px per side)", name)
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
