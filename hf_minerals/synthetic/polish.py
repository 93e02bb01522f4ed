"""Polishing: the surface a reflected-light microscope actually sees.

Scratches run straight across soft phases and vanish on hard ones (pyrite, arsenopyrite, quartz);
hard grains stand proud (relief), so a dark shadow line rims them on the soft side and a thin bright
Kalb line on the hard side; pits are black with a bright wall. Plus fine texture, slow mottling and
the internal reflections of transparent phases (sphalerite, quartz, carbonate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..minerals import CODE_OF
from .fields import gauss_noise, smooth_noise
from .layout import Grain, Layout, Scratch, rasterize, scratch_map
from .optics import HARDNESS, SCRATCH_SUSCEPTIBILITY


def make_scratches(rng: np.random.Generator, x0: float, y0: float, w: float, h: float, per_mm: float,
                   um_per_px: float = 1.0) -> list[Scratch]:
    """Polishing scratches in a window: one dominant family (last polishing direction) plus strays.

    ``per_mm``: expected scratches per mm of window diagonal; widths 0.5-3 um (a scratch narrower than a
    pixel is drawn 1 px wide and proportionally fainter), so the pixel texture follows the magnification.
    """
    diag = float(np.hypot(w, h))
    diag_mm = diag * um_per_px / 1000
    n = min(int(rng.poisson(per_mm * diag_mm)), 120)
    main = rng.uniform(0, np.pi)
    out = []
    for _ in range(n):
        a = main + rng.normal(0, 0.12) if rng.random() < 0.7 else rng.uniform(0, np.pi)
        c = np.array([x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)])
        length = diag * rng.uniform(0.3, 1.2)
        t = np.linspace(-0.5, 0.5, 5)[:, None] * length
        pts = c + t * np.array([np.cos(a), np.sin(a)])
        if rng.random() < 0.3:  # slightly curved (rotating lap)
            pts += (t**2 / length * rng.uniform(-0.15, 0.15)) * np.array([-np.sin(a), np.cos(a)])
        width_px = (0.8 if rng.random() < 0.85 else float(rng.uniform(1.5, 3.0))) / um_per_px
        depth = float(rng.uniform(0.2, 0.6)) * min(1.0, width_px)
        out.append(Scratch(pts, max(1.0, width_px), depth))
    # faint micro-scratches of the last polishing step: the haze on soft phases, along the main direction
    for _ in range(min(int(rng.poisson(2 * per_mm * diag_mm)), 240)):
        a = main + rng.normal(0, 0.08)
        c = np.array([x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)])
        half = diag * rng.uniform(0.1, 0.4) * np.array([np.cos(a), np.sin(a)])
        depth = float(rng.uniform(0.04, 0.12)) * min(1.0, 0.5 / um_per_px)
        out.append(Scratch(np.stack([c - half, c + half]), 1.0, depth))
    return out


@dataclass
class Surface:
    """Per-pixel description of a polished window, before the lamp and camera act on it."""

    idx: np.ndarray  # (h, w) int32 index into ``grains``
    grains: list[Grain]
    mask: np.ndarray  # (h, w) uint8 label codes
    twin: np.ndarray | None  # (h, w) bool: pixel lies in an alternate twin lamella
    shade: np.ndarray  # (h, w) float32 multiplicative: texture x scratches x relief
    glow: np.ndarray | None  # (h, w) float32 internal-reflection strength
    rim: tuple[np.ndarray, np.ndarray] | None  # (rows, cols) of pit-wall pixels (they scatter light back)
    scratch: np.ndarray | None  # (h, w) float32 scratch depth as drawn (before phase susceptibility)

    def instances(self) -> np.ndarray:
        """(h, w) int32 grain instance ids: 0 is the matrix; zoning/twin features keep their host's id."""
        where = {id(g): i for i, g in enumerate(self.grains)}
        lut = np.array([where.get(id(g.host), i) if g.host is not None and g.host.phase == g.phase else i
                        for i, g in enumerate(self.grains)], np.int32)
        return lut[self.idx]


def _lut(grains: list[Grain], fn, dtype=np.float32) -> np.ndarray:
    return np.array([fn(g) for g in grains], dtype=dtype)


def _twins(idx: np.ndarray, grains: list[Grain], x0: int, y0: int) -> np.ndarray | None:
    """Bent polysynthetic twin lamellae: stripes across the grain with a slow sinusoidal bend."""
    has = _lut(grains, lambda g: g.lamellae is not None, bool)
    if not has.any():
        return None
    on = has[idx]
    ys, xs = np.nonzero(on)
    if not len(ys):
        return None
    lam = np.array([g.lamellae or (0, 1, 0, 0) for g in grains], np.float32)
    gi = idx[ys, xs]
    a, period, duty, bend = lam[gi].T
    X, Y = xs.astype(np.float32) + np.float32(x0), ys.astype(np.float32) + np.float32(y0)
    ca, sa = np.cos(a), np.sin(a)
    u = X * ca + Y * sa
    v = Y * ca - X * sa
    u = u + bend * np.sin(v / (3 * period + 1))
    twin = np.zeros(idx.shape, bool)
    offset = np.array([(g.points.flat[0] * 0.1372) % 1.0 if g.points.size else 0.0 for g in grains], np.float32)
    twin[ys, xs] = np.mod(u / period + offset[gi], 1.0) < duty
    return twin


def surface(layout: Layout, x0: int, y0: int, w: int, h: int, seed: int,
            local_noise: bool = False) -> Surface:
    """Rasterise and polish the window at (x0, y0) of size w x h.

    Noise is addressed by absolute position (tiles agree), or drawn for this window alone (``local_noise``)."""
    nx, ny, loc = x0, y0, local_noise
    idx, grains = rasterize(layout, x0, y0, w, h)
    mask = _lut(grains, lambda g: g.code, np.uint8)[idx]

    # fine polish texture (~1 %) and slow mottling (~1.5 %)
    shade = 1 + 0.01 * gauss_noise(seed, 1, nx, ny, w, h, 1, loc)[..., 0] + 0.025 * smooth_noise(seed, 2, nx, ny, w, h, 32, loc)

    # scratches: soft phases only, depth scaled by the phase's susceptibility
    sm = scratch_map(layout, x0, y0, w, h)
    if sm is not None:
        susc = _lut(grains, lambda g: SCRATCH_SUSCEPTIBILITY.get(g.phase, 0.3))[idx]
        shade *= 1 - sm * susc

    # relief: hard grains stand proud; shadow on the soft side, bright Kalb line on the hard side
    # (halo ~1.5 um wide: 1-4 px depending on the magnification)
    hard8 = _lut(grains, lambda g: 60 * np.log10(max(HARDNESS.get(g.phase, 100.0), 10.0)), np.uint8)[idx]
    halo_px = float(np.clip(1.5 / (layout.um_per_px or 0.75), 0.5, 4.0))
    blurred = np.asarray(Image.fromarray(hard8).filter(ImageFilter.BoxBlur(halo_px)), np.float32)
    rel = (blurred - hard8) / np.float32(60)
    shade *= 1 - 0.25 * np.clip(rel, 0, None) + 0.10 * np.clip(-rel, 0, None)

    # internal reflections: sparse diffuse glows inside transparent phases
    strength = _lut(grains, lambda g: g.internal)
    glow = None
    if strength.any():
        s = strength[idx]
        if s.any():
            glow = s * np.clip(smooth_noise(seed, 3, nx, ny, w, h, 5, loc) * 1.4 - 1.6, 0, None)
            glow = glow if glow.any() else None

    # pit walls scatter light back: bright rim just inside pits
    rim = None
    pit = mask == CODE_OF["pit"]
    if pit.any():
        inner = pit.copy()  # 4-neighbour erosion
        inner[1:] &= pit[:-1]
        inner[:-1] &= pit[1:]
        inner[:, 1:] &= pit[:, :-1]
        inner[:, :-1] &= pit[:, 1:]
        rim = np.nonzero(pit & ~inner)
    return Surface(idx, grains, mask, _twins(idx, grains, x0, y0), shade.astype(np.float32), glow, rim, sm)
