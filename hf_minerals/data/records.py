"""One row of the data set before it is written: label, group, provenance and a pixel hash.

Sources (folders, masks, the Hub) only *describe* rows; images are re-read and encoded when the
split is written, so a set of large photomicrographs never sits in memory at once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from PIL import Image

from hf_minerals.imageio import DEFAULT_MAX_PIXELS, load_image

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Folder / Hub split names we accept for each canonical split.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "validation": "validation", "val": "validation", "valid": "validation", "dev": "validation",
    "test": "test", "testing": "test",
}


class DataError(ValueError):
    """Input that cannot make a usable data set; the message says what to fix."""


@dataclass
class Record:
    """A future row. ``path`` (a file to re-read) or ``data`` (encoded bytes in memory) holds the pixels."""

    label: str
    group: str
    source_path: str
    digest: str
    crop_box: list[int] = field(default_factory=list)
    synthetic: bool = False
    split_hint: str | None = None
    path: str | None = None
    data: bytes | None = None
    near_hash: tuple[int, int, int, int] | None = None  # perceptual hash of the whole source photo (near_hash())


def features(class_names: list[str]) -> datasets.Features:
    """The schema every hf-minerals data set shares (see TEAM.md)."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=list(class_names)),
            "group": datasets.Value("string"),
            "source_path": datasets.Value("string"),
            "crop_box": datasets.Sequence(datasets.Value("int32")),
            "synthetic": datasets.Value("bool"),
            # linear white reference (per-channel 99th percentile) of the WHOLE source photo of the patch:
            # training's photo-normalised views use it (docs/training.md, ``colour.py``)
            "photo_reference": datasets.Sequence(datasets.Value("float32"), length=3),
        }
    )


def pixel_digest(img: Image.Image) -> str:
    """Content hash of the decoded 8-bit RGB pixels: equal for byte-identical files and lossless re-saves."""
    h = hashlib.sha256(f"{img.size[0]}x{img.size[1]}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()


#: Below this grey-level range of the 9x8 thumbnail a photo has too little structure for a perceptual hash.
_FLAT_RANGE = 8


def near_hash(img: Image.Image) -> tuple[int, int, int, int] | None:
    """dHash (64 bits: is each cell of a 9x8 grey thumbnail brighter than its right neighbour) + mean RGB.

    Re-saved (JPEG) and rescaled copies of a photo keep the same dHash within a few bits and the same mean
    colour; different photos differ in ~32 bits. ``None`` for near-flat images, whose dHash is noise.
    """
    import numpy as np

    grey = np.asarray(img.convert("L").resize((9, 8), Image.BOX), dtype=np.int16)
    if int(grey.max()) - int(grey.min()) < _FLAT_RANGE:
        return None
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    value = int("".join("1" if b else "0" for b in bits), 2)
    r, g, b = (int(round(c)) for c in np.asarray(img.convert("RGB").resize((8, 8), Image.BOX)).reshape(-1, 3).mean(0))
    return value, r, g, b


def _is_clean_rgb8(raw: bytes) -> bool:
    """True when ``raw`` is a JPEG/PNG that decodes to 8-bit RGB as-is (no EXIF turn, no alpha, no 16-bit)."""
    try:
        img = Image.open(io.BytesIO(raw))
    except Exception:  # noqa: BLE001 - anything odd is simply re-encoded
        return False
    if img.format not in ("JPEG", "PNG") or img.mode != "RGB" or "transparency" in img.info:
        return False
    if img.format == "PNG" and raw[24:25] != b"\x08":  # IHDR bit depth: Pillow reads 16-bit RGB as RGB
        return False
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001
        return False
    return orientation in (1, None)


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


class RecordReader:
    """Encodes records to image bytes, caching the last decoded source so patches of one photo decode once."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS, reflectance: Any = None):
        self.max_pixels = max_pixels
        self.reflectance = reflectance  # ReflectanceCalibration: photos -> reflectance images first
        self._key: str | None = None
        self._img: Image.Image | None = None

    def _decoded(self, rec: Record) -> Image.Image:
        key = rec.path or rec.source_path
        if key != self._key:
            self._img = self._load(rec)
            self._key = key
        assert self._img is not None
        return self._img

    def photo_reference(self, rec: Record) -> list[float]:
        """White reference of the whole photo the record comes from (computed once per photo)."""
        from ..colour import photo_reference

        key = rec.path or rec.source_path
        if getattr(self, "_ref_key", None) != key:
            img = self._decoded(rec) if rec.crop_box else self._load(rec)
            self._ref_key, self._ref = key, [round(float(x), 5) for x in photo_reference(img)]
        return self._ref

    def _load(self, rec: Record) -> Image.Image:
        img = load_image(rec.path if rec.path else rec.data, max_pixels=self.max_pixels)
        if self.reflectance is not None:
            img = Image.fromarray(self.reflectance.to_image(np.asarray(img)))
        return img

    def encode(self, rec: Record) -> bytes:
        """Original bytes for clean 8-bit RGB JPEG/PNG files, lossless PNG of the decoded pixels otherwise."""
        if not rec.crop_box and self.reflectance is not None:
            return encode_png(self._load(rec))
        if not rec.crop_box:
            raw = rec.data if rec.data is not None else Path(rec.path).read_bytes()
            if _is_clean_rgb8(raw):
                return raw
            return encode_png(load_image(raw, max_pixels=self.max_pixels))
        return encode_png(self._decoded(rec).crop(tuple(rec.crop_box)))
