"""Cheap deterministic random fields, addressed by absolute pixel position.

Noise comes in fixed 128-px blocks of random bytes, each from its own generator seeded by (seed, salt,
block row, block column): any window of a big section gets the same values whichever tile renders it.
Bytes map to Gaussian values through a 256-entry inverse-CDF table (fast; 8-bit resolution is plenty).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from PIL import Image

BLOCK = 128

#: Standard-normal quantiles of the 256 byte values (mean 0, std ~1).
GAUSS_LUT = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32)
GAUSS_LUT /= GAUSS_LUT.std()


def noise_bytes(seed: int, salt: int, x0: int, y0: int, w: int, h: int, channels: int = 1,
                local: bool = False) -> np.ndarray:
    """Uniform random bytes (h, w, channels) for the absolute window at (x0, y0).

    ``local``: the window stands alone (a single scene), so draw it from one generator (faster)."""
    if local:
        rng = np.random.default_rng([seed & 0xFFFFFFFF, salt, 0xABCDEF, w, h])
        return np.frombuffer(rng.bytes(h * w * channels), np.uint8).reshape(h, w, channels)
    out = np.empty((h, w, channels), dtype=np.uint8)
    bx0, by0 = x0 // BLOCK, y0 // BLOCK
    bx1, by1 = (x0 + w - 1) // BLOCK, (y0 + h - 1) // BLOCK
    for by in range(by0, by1 + 1):
        for bx in range(bx0, bx1 + 1):
            rng = np.random.default_rng([seed & 0xFFFFFFFF, salt, by & 0xFFFFFFFF, bx & 0xFFFFFFFF])
            blk = np.frombuffer(rng.bytes(BLOCK * BLOCK * channels), np.uint8).reshape(BLOCK, BLOCK, channels)
            ys, xs = max(y0, by * BLOCK), max(x0, bx * BLOCK)
            ye, xe = min(y0 + h, (by + 1) * BLOCK), min(x0 + w, (bx + 1) * BLOCK)
            out[ys - y0 : ye - y0, xs - x0 : xe - x0] = blk[ys - by * BLOCK : ye - by * BLOCK, xs - bx * BLOCK : xe - bx * BLOCK]
    return out


def gauss_noise(seed: int, salt: int, x0: int, y0: int, w: int, h: int, channels: int = 1,
                local: bool = False) -> np.ndarray:
    """Standard-normal float32 noise (h, w, channels) for the absolute window at (x0, y0)."""
    return GAUSS_LUT[noise_bytes(seed, salt, x0, y0, w, h, channels, local)]


def smooth_noise(seed: int, salt: int, x0: int, y0: int, w: int, h: int, scale: int, local: bool = False) -> np.ndarray:
    """Smooth Gaussian noise (h, w) with correlation length ~``scale`` px: a coarse grid, bilinearly upsampled.

    The grid is anchored to absolute coordinates and padded by one cell, so windows agree where they overlap.
    """
    gx0, gy0 = x0 // scale - 1, y0 // scale - 1
    gx1, gy1 = (x0 + w) // scale + 2, (y0 + h) // scale + 2
    grid = gauss_noise(seed, salt, gx0, gy0, gx1 - gx0, gy1 - gy0, 1, local)[..., 0]
    up = Image.fromarray(grid, "F").resize(((gx1 - gx0) * scale, (gy1 - gy0) * scale), Image.Resampling.BILINEAR)
    ox, oy = x0 - gx0 * scale, y0 - gy0 * scale
    return np.asarray(up)[oy : oy + h, ox : ox + w]
