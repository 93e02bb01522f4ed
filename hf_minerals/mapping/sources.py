"""Section images read band by band, so memory is bounded by a band of tiles, not by the image.

PIL decodes PNG/JPEG/compressed TIFF whole, which is fine for a 3396x2547 photomicrograph but not for
a stitched 20k x 20k mosaic (1.2 GB decoded). Three kinds of source:

* ``.npy`` arrays (HxWx3, HxWx4 or HxW; uint8 or uint16, C order): rows read from the file with
  ``os.pread`` - never decoded whole, never memory-mapped (mapped pages would count as resident).
* uncompressed strip TIFF / BigTIFF (8 or 16 bit, grey/RGB/RGBA, chunky): strips read the same way.
  This is what stitching software writes with compression off (``vips tiffsave in.png out.tif``,
  ``tifffile.imwrite(..., compression=None)``, ``PIL.Image.save(..., compression=None)``).
* anything else ``imageio.load_image`` reads (PNG, JPEG, BMP, compressed TIFF), decoded whole up to
  ``max_pixels``; bigger ones are refused with advice to convert.

Pixels go through ``imageio.array_to_rgb8``, the conversion ``imageio.load_image`` uses: 16-bit data are
scaled to 8 bit the same way, grey is repeated to RGB, alpha composites on black. EXIF orientation is
honoured only for PIL-decoded images. Every source obeys the shared input policy (``hf_minerals.inputs``):
a path that cannot be read is refused with its reason, and so is an image under the smallest side.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import inputs
from ..imageio import ImageLoadError, array_to_rgb8, load_image

_CONVERT_ADVICE = (
    "convert it to an uncompressed TIFF (e.g. `vips tiffsave IN OUT.tif --compression none --bigtiff`) "
    "or a .npy array (HxWx3 uint8) and map that"
)


def _to_rgb8(block: np.ndarray) -> np.ndarray:
    """(h, w[, c]) uint8/uint16 -> (h, w, 3) uint8, exactly as ``load_image`` converts."""
    return array_to_rgb8(block)


class SectionSource:
    """Row-band reader: ``width``, ``height``, ``read_rows(y0, y1) -> (y1-y0, width, 3) uint8``."""

    width: int
    height: int
    kind: str

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> SectionSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource(SectionSource):
    """An image already in memory (PIL-decoded file, Space upload, test array)."""

    kind = "in-memory"

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim not in (2, 3):
            raise ImageLoadError(f"array of shape {array.shape} is not an image")
        self.array = array
        self.height, self.width = array.shape[:2]

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        return _to_rgb8(self.array[y0:y1])


class CalibratedSource(SectionSource):
    """Another source's rows turned into reflectance images (``reflectance.ReflectanceCalibration``), band by
    band: the dark/white frames are stretched over the whole section, never held at its full size."""

    def __init__(self, src: SectionSource, calibration) -> None:
        self.src, self.cal = src, calibration
        self.width, self.height, self.kind = src.width, src.height, f"{src.kind}+reflectance"

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        return self.cal.to_image(self.src.read_rows(y0, y1), y0=y0, frame_height=self.height)

    def close(self) -> None:
        self.src.close()


def section_reference(src: SectionSource, max_rows: int = 512) -> np.ndarray:
    """Linear white reference (``colour.photo_reference``) of a whole section, from evenly spaced row
    bands (at most ``max_rows`` rows read), so big mosaics cost one light pass."""
    from ..colour import photo_reference

    step = max(1, src.height // max_rows)
    rows = [src.read_rows(y, min(y + 1, src.height)) for y in range(0, src.height, step)]
    return photo_reference(np.concatenate(rows))


@dataclass
class RawSource(SectionSource):
    """Uncompressed row-major pixels in a file, as blocks of rows (one block for .npy, one per TIFF strip)."""

    path: Path
    width: int
    height: int
    channels: int
    dtype: np.dtype
    blocks: list[tuple[int, int, int]]  # (first_row, n_rows, file_offset)
    kind: str = "raw"
    _fd: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        self._fd = os.open(self.path, os.O_RDONLY)
        self.row_bytes = self.width * self.channels * self.dtype.itemsize
        need = max(off + n * self.row_bytes for _, n, off in self.blocks)
        if os.fstat(self._fd).st_size < need:
            self.close()
            raise ImageLoadError(f"file is truncated (needs {need:,} bytes)", str(self.path))

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        out = np.empty((y1 - y0, self.width, self.channels), self.dtype)
        buf = out.reshape(-1).view(np.uint8)
        for first, n, off in self.blocks:
            a, b = max(y0, first), min(y1, first + n)
            if a >= b:
                continue
            want = (b - a) * self.row_bytes
            dst = memoryview(buf)[(a - y0) * self.row_bytes : (b - y0) * self.row_bytes]
            got = os.preadv(self._fd, [dst], off + (a - first) * self.row_bytes)
            if got != want:
                raise ImageLoadError(f"short read at rows {a}-{b}", str(self.path))
        return _to_rgb8(out if self.channels > 1 else out[..., 0])

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _npy_source(path: Path) -> RawSource:
    with path.open("rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
        except ValueError as exc:
            raise ImageLoadError(f"not a .npy array ({exc})", str(path)) from exc
        offset = fh.tell()
    if fortran or dtype.kind != "u" or dtype.itemsize not in (1, 2) or len(shape) not in (2, 3):
        raise ImageLoadError(f".npy must be C-order HxW[xC] uint8/uint16, got {shape} {dtype} fortran={fortran}", str(path))
    channels = 1 if len(shape) == 2 else shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageLoadError(f".npy has {channels} channels (need 1-4)", str(path))
    return RawSource(path, shape[1], shape[0], channels, dtype.newbyteorder("=") if dtype.itemsize == 1 else dtype,
                     [(0, shape[0], offset)], kind="npy (streamed)")


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}  # BYTE, SHORT, LONG, LONG8


def _tiff_tags(fh, path: Path) -> tuple[dict[int, tuple[int, ...]], str]:
    head = fh.read(16)
    if head[:2] not in (b"II", b"MM"):
        raise ImageLoadError("not a TIFF", str(path))
    e = "<" if head[:2] == b"II" else ">"
    magic = struct.unpack(e + "H", head[2:4])[0]
    big = magic == 43
    if magic not in (42, 43):
        raise ImageLoadError("not a TIFF", str(path))
    ifd = struct.unpack(e + "Q", head[8:16])[0] if big else struct.unpack(e + "I", head[4:8])[0]
    fh.seek(ifd)
    n = struct.unpack(e + ("Q" if big else "H"), fh.read(8 if big else 2))[0]
    entry, inline = (20, 8) if big else (12, 4)
    raw = fh.read(n * entry)
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(n):
        tag, typ = struct.unpack(e + "HH", raw[i * entry : i * entry + 4])
        count = struct.unpack(e + ("Q" if big else "I"), raw[i * entry + 4 : i * entry + (12 if big else 8)])[0]
        if typ not in _TIFF_TYPES:
            continue
        fmt = e + _TIFF_TYPES[typ] * count
        size = struct.calcsize(fmt)
        value = raw[i * entry + entry - inline : (i + 1) * entry]
        if size > inline:
            pos = fh.tell()
            fh.seek(struct.unpack(e + ("Q" if big else "I"), value)[0])
            value = fh.read(size)
            fh.seek(pos)
        tags[tag] = struct.unpack(fmt, value[:size])
    return tags, e


def _tiff_source(path: Path) -> RawSource | None:
    """A streamed source for an uncompressed chunky strip TIFF, or None when PIL must decode it."""
    with path.open("rb") as fh:
        if fh.read(4)[:2] not in (b"II", b"MM"):
            return None  # not a TIFF at all: load_image says what it is, in the words every door uses
        fh.seek(0)
        tags, endian = _tiff_tags(fh, path)
    width, height = tags[256][0], tags[257][0]
    bits = tags.get(258, (1,))
    spp = tags.get(277, (1,))[0]
    if (tags.get(259, (1,))[0] != 1 or 322 in tags or tags.get(284, (1,))[0] != 1 or len(set(bits)) != 1
            or bits[0] not in (8, 16) or tags.get(339, (1,))[0] != 1 or tags.get(262, (1,))[0] not in (1, 2)
            or 273 not in tags):
        return None  # compressed, tiled, planar, palette, float ...: let PIL decode (bounded by max_pixels)
    dtype = np.dtype(endian + ("u1" if bits[0] == 8 else "u2"))
    rps = min(tags.get(278, (height,))[0], height)
    offsets = tags[273]
    blocks = [(i * rps, min(rps, height - i * rps), off) for i, off in enumerate(offsets) if i * rps < height]
    return RawSource(path, width, height, spp, dtype, blocks, kind="tiff (streamed)")


def check_section_size(width: int, height: int, min_side: int | None = None, source: str | None = None) -> None:
    """Refuse a section under the shared smallest side (a 2x2 image is not a section: no '100 % gold')."""
    min_side = inputs.limits().min_side if min_side is None else min_side
    if min(width, height) < min_side:
        raise ImageLoadError(inputs.too_small(width, height, min_side), source)


def open_section(path: str | os.PathLike, max_pixels: int | None = None, min_side: int | None = None) -> SectionSource:
    """The right reader for a section image (see module docstring); ``ImageLoadError`` if unusable."""
    p = Path(path)
    problem = inputs.path_problem(p)
    if problem:
        raise ImageLoadError(problem, str(p))
    suffix = p.suffix.lower()
    src: SectionSource | None = None
    try:
        if suffix == ".npy":
            src = _npy_source(p)
        elif suffix in (".tif", ".tiff"):
            src = _tiff_source(p)
    except ImageLoadError:
        raise
    except OSError as exc:
        raise ImageLoadError(inputs.os_reason(exc), str(p)) from exc
    except (struct.error, KeyError, IndexError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"truncated or corrupt {suffix.lstrip('.').upper()} file ({type(exc).__name__})", str(p)) from exc
    if src is None:
        try:
            img = load_image(p, max_pixels=max_pixels, min_side=min_side)
        except ImageLoadError as exc:
            if "too many pixels" in exc.reason:
                raise ImageLoadError(f"{exc.reason}: formats like PNG/JPEG are decoded whole; {_CONVERT_ADVICE}", str(p)) from exc
            raise
        src = ArraySource(np.asarray(img))
        src.kind = "decoded (PIL)"
    try:
        check_section_size(src.width, src.height, min_side, str(p))
    except ImageLoadError:
        src.close()
        raise
    return src
