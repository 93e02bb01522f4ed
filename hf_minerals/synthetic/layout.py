"""Grains as vector shapes, and their rasterisation into a phase-index map.

A scene is a :class:`Layout`: base grains drawn in z-order, then *features* (fractures, inclusions,
zoning, pits, exsolution blebs) that are clipped to the grain that hosts them, then polishing scratches.
Shapes live in absolute pixel coordinates so a big section can be rasterised window by window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ..minerals import CODE_OF


@dataclass(eq=False)
class Grain:
    """One grain or feature: a filled polygon (``width == 0``) or a polyline of ``width`` px."""

    phase: str
    points: np.ndarray  # (N, 2) x, y in px; or (K, N, 2): a cluster of K small same-phase shapes (pits, blebs)
    refl: np.ndarray  # (4,) reflectance fraction at 470/546/589/650 nm
    width: float = 0.0
    host: Grain | None = None  # features only: drawn only where this grain is
    alt_refl: np.ndarray | None = None  # reflectance of alternate twin lamellae
    lamellae: tuple[float, float, float, float] | None = None  # (angle rad, period px, duty 0-1, bend px)
    internal: float = 0.0  # strength of internal reflections (sphalerite, gangue)
    label: str | None = None  # mask phase if different from ``phase`` (e.g. zoning of the same mineral)

    @property
    def code(self) -> int:
        return CODE_OF[self.label or self.phase]

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) including the line width; cached (shapes are not edited after creation)."""
        box = self.__dict__.get("_bbox")
        if box is None:
            pad = self.width / 2 + 2
            flat = self.points.reshape(-1, 2)
            lo, hi = flat.min(0), flat.max(0)
            box = self.__dict__["_bbox"] = (lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad)
        return box


@dataclass
class Scratch:
    """A polishing scratch: a polyline with a width (px) and a depth (fractional darkening)."""

    points: np.ndarray
    width: float
    depth: float

    bbox = Grain.bbox


@dataclass
class Layout:
    matrix: Grain  # phase of every pixel no grain covers (the gangue)
    grains: list[Grain] = field(default_factory=list)
    features: list[Grain] = field(default_factory=list)
    scratches: list[Scratch] = field(default_factory=list)
    um_per_px: float | None = None  # scale of the window: sizes relief halos in micrometres
    #: last rasterisation ((x0, y0, w, h), idx, grains): composition checks reuse it for the final render
    raster_cache: tuple | None = field(default=None, repr=False, compare=False)


def _visible(g: Grain | Scratch, x0: int, y0: int, w: int, h: int) -> bool:
    bx0, by0, bx1, by1 = g.bbox()
    return not (bx1 < x0 or bx0 > x0 + w or by1 < y0 or by0 > y0 + h)


def _draw(draw: ImageDraw.ImageDraw, g: Grain | Scratch, x0: int, y0: int, value: int) -> None:
    # integer vertices: PIL's float edge arithmetic is not translation invariant, and tiles must agree
    ipts = g.__dict__.get("_ipts")
    if ipts is None:
        ipts = g.__dict__["_ipts"] = np.rint(g.points).astype(np.int32)
    if ipts.ndim == 3:  # a cluster of small polygons
        for poly in (ipts - np.array([x0, y0], np.int32)).reshape(len(ipts), -1).tolist():
            draw.polygon(poly, fill=value)
        return
    pts = (ipts - np.array([x0, y0], np.int32)).ravel().tolist()
    if g.width > 0:
        draw.line(pts, fill=value, width=max(1, int(round(g.width))), joint="curve")
    elif len(pts) >= 6:
        draw.polygon(pts, fill=value)


def rasterize(layout: Layout, x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, list[Grain]]:
    """Index map (h, w) int32 into the returned grain list (index 0 is the matrix) for one window."""
    if layout.raster_cache is not None and layout.raster_cache[0] == (x0, y0, w, h):
        return layout.raster_cache[1], layout.raster_cache[2]
    grains = [layout.matrix] + [g for g in layout.grains if _visible(g, x0, y0, w, h)]
    base_img = Image.new("I", (w, h), 0)
    d = ImageDraw.Draw(base_img)
    for i, g in enumerate(grains[1:], start=1):
        _draw(d, g, x0, y0, i)
    idx = np.asarray(base_img, dtype=np.int32)
    feats = [f for f in layout.features if _visible(f, x0, y0, w, h)]
    if feats:
        where = {id(g): i for i, g in enumerate(grains)}
        feat_img = Image.new("I", (w, h), 0)
        d = ImageDraw.Draw(feat_img)
        host = np.full(len(feats) + 1, -2, dtype=np.int32)
        for j, f in enumerate(feats, start=1):
            _draw(d, f, x0, y0, j)
            host[j] = -1 if f.host is None else where.get(id(f.host), -3)
        fid = np.asarray(feat_img, dtype=np.int32)
        fh = host[fid]
        keep = (fid > 0) & ((fh == -1) | (fh == idx))
        idx = np.where(keep, fid + len(grains) - 1, idx)
        grains = grains + feats
    layout.raster_cache = ((x0, y0, w, h), idx, grains)
    return idx, grains


def scratch_map(layout: Layout, x0: int, y0: int, w: int, h: int) -> np.ndarray | None:
    """Scratch depth (h, w) float32 in [0, 1] for one window (before phase susceptibility), or None."""
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    drawn = False
    for s in layout.scratches:
        if _visible(s, x0, y0, w, h):
            _draw(d, s, x0, y0, int(round(255 * s.depth)))
            drawn = True
    if not drawn:
        return None
    return np.asarray(img, dtype=np.float32) / 255.0
