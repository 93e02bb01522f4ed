"""Which pixels are ore: a per-image threshold on illumination-corrected luma.

A fixed luma cut (the tile mapper's 105) loses sphalerite (reflectance ~17 %) in the corners of a
vignetted frame, where the lamp gives 20-30 % less light. Here the illumination is estimated from the
image itself: gangue (quartz, carbonate, resin; < ~6 % reflectance) covers most of a section and is
locally the darkest common phase, so the median luma of the dark pixels of each block, smoothed,
tracks the lamp. Luma divided by that field is flat; Otsu's threshold on the flattened histogram
separates gangue from ore whatever the exposure. Everything is estimated from a subsample (every
``step``-th row and column), so it costs a fraction of one read of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sources import SectionSource
from .tiler import luma

#: Flattened luma is scaled so that the gangue sits at this level (0-255 scale).
GANGUE_LEVEL = 64.0
#: The threshold never goes below this multiple of the gangue level (ore reflects >= ~2.5x gangue).
MIN_CONTRAST = 1.35


def otsu(hist: np.ndarray) -> int:
    """Otsu's threshold of a histogram: the bin index t maximising between-class variance (class 1: >= t)."""
    h = hist.astype(np.float64)
    total = h.sum()
    if total == 0:
        return len(h) // 2
    bins = np.arange(len(h))
    w0 = np.cumsum(h)[:-1]
    m0 = np.cumsum(h * bins)[:-1]
    w1 = total - w0
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] + h[-1] * bins[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return int(np.argmax(between)) + 1


@dataclass
class OreThreshold:
    """Gain field on a coarse grid (``block`` px cells) and the threshold on flattened luma."""

    gain: np.ndarray  # (gh, gw) float32: multiply luma by this to flatten the illumination
    block: int
    threshold: float  # on flattened luma
    gangue_luma: float  # median gangue luma of the whole image before flattening
    method: str = "otsu on illumination-flattened luma"

    def gain_at(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(len(ys), len(xs)) float32 gain at image rows ``ys`` x columns ``xs`` (nearest coarse cell)."""
        gy = np.minimum(ys // self.block, self.gain.shape[0] - 1)
        gx = np.minimum(xs // self.block, self.gain.shape[1] - 1)
        return self.gain[gy][:, gx]

    def mask_at(self, pixels: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Bool ore mask of ``pixels`` (len(ys), len(xs), 3) sampled at image rows ``ys``, columns ``xs``."""
        return luma(pixels) * self.gain_at(ys, xs) >= self.threshold

    def ore_mask(self, band: np.ndarray, y0: int) -> np.ndarray:
        """Bool (h, w): ore pixels of a band of rows starting at image row ``y0``."""
        h, w = band.shape[:2]
        return self.mask_at(band, np.arange(y0, y0 + h), np.arange(w))

    def to_dict(self) -> dict[str, float | int | str]:
        return {"method": self.method, "threshold_flattened_luma": round(self.threshold, 2),
                "gangue_luma": round(self.gangue_luma, 2), "gain_min": round(float(self.gain.min()), 3),
                "gain_max": round(float(self.gain.max()), 3), "block_px": self.block}


def _smooth(grid: np.ndarray, passes: int = 2) -> np.ndarray:
    """3x3 box smoothing, edge-padded, ``passes`` times (the lamp field varies slowly)."""
    for _ in range(passes):
        p = np.pad(grid, 1, mode="edge")
        grid = sum(p[i : i + grid.shape[0], j : j + grid.shape[1]] for i in range(3) for j in range(3)) / 9.0
    return grid


def estimate_threshold(src: SectionSource, step: int = 4, block: int = 256) -> OreThreshold:
    """Estimate the illumination field and the ore threshold from every ``step``-th row/column of ``src``."""
    W, H = src.width, src.height
    block = max(step, min(block, max(W, H)))
    rows = []
    for y0 in range(0, H, 64 * step):  # bands of 64 sampled rows: bounded memory for any image size
        band = src.read_rows(y0, min(H, y0 + 64 * step))[::step, ::step]
        rows.append(luma(band).astype(np.uint8))
    sample = np.concatenate(rows, axis=0)
    first = otsu(np.bincount(sample.ravel(), minlength=256))
    dark = sample < first
    gangue = float(np.median(sample[dark])) if dark.any() else float(first) / 2
    gangue = max(gangue, 1.0)
    # per block: median luma of the dark (gangue) pixels; blocks with too little gangue get the global value
    sb = max(1, block // step)
    gh, gw = -(-sample.shape[0] // sb), -(-sample.shape[1] // sb)
    field = np.full((gh, gw), gangue, np.float64)
    for i in range(gh):
        for j in range(gw):
            cell = sample[i * sb : (i + 1) * sb, j * sb : (j + 1) * sb]
            d = cell[dark[i * sb : (i + 1) * sb, j * sb : (j + 1) * sb]]
            if d.size >= max(16, cell.size // 10):
                field[i, j] = max(float(np.median(d)), 1.0)
    field = _smooth(field)
    gain = (GANGUE_LEVEL / field).astype(np.float32)
    gy = np.minimum(np.arange(sample.shape[0]) // sb, gh - 1)
    gx = np.minimum(np.arange(sample.shape[1]) // sb, gw - 1)
    flat = np.clip(sample * gain[gy][:, gx], 0, 255).astype(np.uint8)
    t = max(float(otsu(np.bincount(flat.ravel(), minlength=256))), MIN_CONTRAST * GANGUE_LEVEL)
    return OreThreshold(gain, block, t, gangue)


def fixed_threshold(src: SectionSource, background_luma: float, block: int = 256) -> OreThreshold:
    """The tile mapper's fixed luma cut as an :class:`OreThreshold` (gain 1 everywhere)."""
    gh, gw = -(-src.height // block), -(-src.width // block)
    return OreThreshold(np.ones((gh, gw), np.float32), block, float(background_luma), float("nan"), "fixed luma")
