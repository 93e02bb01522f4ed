"""Pixel-true modal abundance: every ore pixel gets its own phase, not its tile's top class.

Why: giving every ore pixel of a tile to the tile's answer under-counts inclusions and fracture fills
(gold in pyrite, chalcopyrite veinlets), which are exactly the minerals a lab weighs. Steps:

1. **Ore pixels** by a per-image threshold on illumination-flattened luma (:mod:`.ore`).
2. **Tiles** overlap (default stride = tile / 2) and are classified by the one ``Predictor``
   (:func:`.core.map_section`, unchanged).
3. **Prior per cell**: the class probabilities of every tile covering a pixel, averaged with a
   tapered window (tile centres count more than edges), on a grid of ``prior_px`` cells. Tiles under
   the unknown threshold vote for ``unknown``.
4. **Colour per cell**: one pass over the image (in a worker thread while the model runs, for an
   in-memory image) counts the ore pixels of every ``colour_cell`` x ``colour_cell`` cell and averages
   their illumination-flattened RGB (integer sums; 4x4 cells: 4-fold less sensor noise than a pixel, so
   pyrite and arsenopyrite separate, and the colour model runs on 1/16 of the pixels). Each mineral's
   colour (mean, full covariance) is learnt *from this section*: seeded on cells whose prior is confident
   (>= 0.8), refined by EM (responsibility = tempered prior x colour likelihood). A cell's phase is
   ``argmax PRIOR_WEIGHT log prior + log p(colour | phase)``; the colour likelihood is a Gaussian mixed
   with 5 % of a flat density, so odd colours fall back to the prior.
5. **Pixels on boundaries**: a cell next to a cell of another phase whose green/blue spread is above
   noise holds two phases (a grain edge, an inclusion a few px across); its ore pixels are decided one by
   one, among the phases of the 3 x 3 cell neighbourhood, by their own colour (cell model widened by the
   measured pixel noise). Every other ore pixel takes its cell's phase; gangue pixels stay gangue (the
   ore mask is per pixel), so the label image is pixel-true.
6. **Counts** per block of ``block_px`` (area % with a 95 % interval: bootstrap over blocks - the
   spread from where the grains happen to lie, not the classifier's error) and, when the image is at
   most ``label_max_pixels``, the full-resolution label image for grain statistics (:mod:`.grains`).

Memory: the prior grid (image / prior_px² x classes floats), the cell grid (image / colour_cell² x
~20 bytes), one band of rows, and (under ``label_max_pixels``) the ore mask and the uint8 label image.
The image is never decoded twice: a PIL-decoded image is held as an array; ``.npy``/TIFF sources re-read
their rows (threshold sample, tiles, cells, boundary cells).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..predict import UNKNOWN, Predictor
from .ore import OreThreshold, estimate_threshold, fixed_threshold
from .sources import ArraySource, SectionSource
from .tiler import BACKGROUND, STATUS_MINERAL, STATUS_UNKNOWN, SectionMap, map_section

#: share of the known-class prior above which a cell seeds its phase's colour model; 0.6 was chosen on
#: SYNTHETIC mixed sections 300-301 among 0.4-0.8 (0.8 left pyrite and arsenopyrite without a seed under
#: the lab-like imaging, where the quickstart model is rarely that sure of them)
CONFIDENT = 0.6
OUTLIER_SHARE = 0.05  # weight of the flat density in each colour likelihood
LOG_FLAT = -3 * np.log(256.0)  # log density of a uniform colour over the RGB cube
PRIOR_FLOOR = 1e-3  # colour can overturn a prior down to this
#: Tempering of the tile prior (log prior x this): tiles trained on one-mineral scenes are over-confident
#: about mixed tiles, so the colour evidence gets more say than a literal Bayes rule would give it.
#: 0.2 (with colour_radius 1) was chosen on SYNTHETIC mixed sections 300-301 from 0.05-1.0 (radius 1, 2);
#: the benchmark scores other seeds (400-402).
PRIOR_WEIGHT = 0.2
SIGMA_FLOOR = 4.0  # smallest colour spread per channel (sensor noise, JPEG)
MIN_COLOUR_SAMPLES = 200
EM_SAMPLES = 10_000
INLIER_D2 = 11.34  # chi-square, 3 degrees of freedom, 99 %
#: a boundary cell is decided pixel by pixel when its colour spread exceeds this multiple of the typical one
SPREAD_FACTOR = 2.0  # chosen on SYNTHETIC dev sections 300-301 (1.2-3.0; 2.0 keeps accuracy, refines fewer cells)


@dataclass
class PixelMap:
    """Result of :func:`map_pixels`: the tile map, the ore threshold, per-pixel counts and the table."""

    section: SectionMap
    ore: OreThreshold
    phases: list[str]  # label image codes: 0 background, 1..C model classes, C+1 unknown
    block_counts: np.ndarray  # (n_blocks, C + 2) pixels per phase and block (column 0: background)
    labels: np.ndarray | None  # (H, W) uint8 label image, or None above label_max_pixels
    colour: dict[str, Any]
    abundance: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)


def taper(n: int) -> np.ndarray:
    """1-D tile weight at ``n`` cell centres: 1 in the middle, 0.1 at the edges (triangular)."""
    u = (np.arange(n) + 0.5) / n
    return (1.0 - 0.9 * np.abs(2 * u - 1)).astype(np.float32)


def _tile_weights(starts: np.ndarray, tile: int, cell: int, n_cells: int) -> np.ndarray:
    """(n_cells, len(starts)) taper weight of each tile (row or column) on each cell along one axis."""
    a = np.zeros((n_cells, len(starts)), np.float32)
    for i, s in enumerate(starts):
        g0, g1 = int(s) // cell, -(-(int(s) + tile) // cell)
        a[g0:g1, i] = taper(g1 - g0)
    return a


def prior_grid(m: SectionMap, cell: int) -> np.ndarray:
    """(gh, gw, C + 1) averaged tile probabilities per ``cell`` px (last column: unknown); NaN where no
    classified tile covers the cell. The tile weight is separable (row taper x column taper) and tiles sit
    on a grid, so the weighted sum over tiles is two small matrix products, not a loop over tiles."""
    gh, gw = -(-m.height // cell), -(-m.width // cell)
    c = len(m.labels)
    rows, cols = m.grid.shape
    status = m.status.reshape(rows, cols)
    vec = np.zeros((rows, cols, c + 1), np.float32)
    mineral = status == STATUS_MINERAL
    vec[mineral, :c] = m.probs.reshape(rows, cols, c)[mineral]
    vec[status == STATUS_UNKNOWN, c] = 1.0
    used = np.isin(status, (STATUS_MINERAL, STATUS_UNKNOWN)).astype(np.float32)
    ay = _tile_weights(m.grid.ys.starts, m.grid.tile, cell, gh)
    ax = _tile_weights(m.grid.xs.starts, m.grid.tile, cell, gw)
    acc = np.einsum("yr,rck,xc->yxk", ay, vec, ax, optimize=True)
    wsum = ay @ used @ ax.T
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / wsum[:, :, None]
    out[wsum <= 0] = np.nan
    return out.astype(np.float32)


def mahalanobis2(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(n, C) squared Mahalanobis distance of each colour to each class model; inf for classes without one."""
    out = np.full((len(x), len(mean)), np.inf, np.float32)
    for k in np.nonzero(np.isfinite(cov[:, 0, 0]))[0]:
        d = (x - mean[k]).astype(np.float32, copy=False)
        y = d @ np.linalg.inv(cov[k]).astype(np.float32)  # BLAS, and the 3 terms summed by hand: numpy's
        out[:, k] = y[:, 0] * d[:, 0] + y[:, 1] * d[:, 1] + y[:, 2] * d[:, 2]  # reductions over 3 are slow
    return out


def refine_em(x: np.ndarray, prior: np.ndarray, mean: np.ndarray, cov: np.ndarray, rounds: int = 6
              ) -> tuple[np.ndarray, np.ndarray]:
    """Robust EM over sampled ore pixels: responsibility = prior x colour likelihood.

    * A class with a model is re-fitted to the pixels it is responsible for *and* that lie within the
      99 % ellipsoid of its current model, so another mineral's pixels never widen it.
    * A class without one (never confidently predicted: inclusions, rare minerals) is seeded from the
      pixels no model explains, weighted by its responsibility - gold locked in pyrite has a colour of
      its own and a small but non-zero share of the tile votes."""
    logp = PRIOR_WEIGHT * np.log(np.maximum(prior, PRIOR_FLOOR))
    for _ in range(rounds):
        d2 = mahalanobis2(x, mean, cov)
        score = logp + colour_loglik(x, mean, cov, d2)
        score -= score.max(1, keepdims=True)
        r = np.exp(score)
        r /= r.sum(1, keepdims=True)
        unexplained = (d2 > INLIER_D2).all(1)
        for k in range(len(mean)):
            has_model = np.isfinite(cov[k, 0, 0])
            w = r[:, k] * (d2[:, k] <= INLIER_D2 if has_model else unexplained)
            if w.sum() < MIN_COLOUR_SAMPLES / 4:
                continue
            mean[k] = (w[:, None] * x).sum(0) / w.sum()
            dk = x - mean[k]
            cov[k] = _regularised((w[:, None, None] * dk[:, :, None] * dk[:, None, :]).sum(0) / w.sum() * 1.1)
    return mean, cov


def dominant_mode(x: np.ndarray, rounds: int = 4, keep: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Centre and covariance (3x3) of the main cluster of ``x`` (n, 3): re-estimated on the samples within
    ``keep`` Mahalanobis units, so pixels of a neighbouring mineral in the same confident tiles drop out.
    Full covariance: brightness varies from grain to grain along (R, G, B) together, while minerals of
    close brightness differ in hue (pyrite vs arsenopyrite: R - B)."""
    centre = np.median(x, 0)
    cov = _regularised(np.cov(x.T))
    for _ in range(rounds):
        d = x - centre
        near = x[np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d) <= keep**2]
        if len(near) < MIN_COLOUR_SAMPLES:
            break
        centre = np.median(near, 0)
        cov = _regularised(np.cov(near.T) * 1.2)  # undo part of the trimming's shrinkage
    return centre.astype(np.float32), cov.astype(np.float32)


def _regularised(cov: np.ndarray) -> np.ndarray:
    return cov + np.eye(3) * SIGMA_FLOOR**2


def colour_loglik(flat: np.ndarray, mean: np.ndarray, cov: np.ndarray, d2: np.ndarray | None = None) -> np.ndarray:
    """(n, C) log p(colour | class): Gaussian mixed with a flat density; flat only for classes without a model.
    ``d2``: :func:`mahalanobis2` of the same arguments, if already computed."""
    d2 = mahalanobis2(flat, mean, cov) if d2 is None else d2
    flat_term = np.float32(OUTLIER_SHARE * np.exp(LOG_FLAT))
    out = np.full((len(flat), len(mean)), np.log(flat_term), np.float32)
    for k in np.nonzero(np.isfinite(cov[:, 0, 0]))[0]:
        # log((1 - e) N + e flat) as one exp and one log in float32 (np.logaddexp is several times slower);
        # where exp underflows the Gaussian is ~1e-30 of the flat term, so the answer is the flat term anyway
        c = np.float32(np.log1p(-OUTLIER_SHARE) - 0.5 * np.log(np.linalg.det(cov[k])) - 1.5 * np.log(2 * np.pi))
        g = d2[:, k] * np.float32(-0.5)
        g += c
        np.exp(g, out=g)
        g += flat_term
        np.log(g, out=out[:, k])
    return out


@dataclass
class CellScan:
    """One pass over the image, on a grid of ``f`` x ``f`` px cells: ore pixels per cell and their mean
    illumination-flattened colour. Why cells: a cell's mean colour has ``f``-fold less sensor noise than a
    pixel (pyrite and arsenopyrite separate), and the colour model then runs on 1/f² of the pixels."""

    f: int
    count: np.ndarray  # (gh, gw) uint16 ore pixels per cell
    colour: np.ndarray  # (gh, gw, 3) float32 mean flattened RGB of the cell's ore pixels (0 without ore)
    full: np.ndarray  # (gh, gw) bool: every pixel of the cell is ore (a clean colour sample)
    gain_cell: np.ndarray  # (gh, gw) float32 illumination gain at each cell
    spread: np.ndarray  # (gh, gw) uint8 largest max - min of green or blue over the cell's ore pixels
    noise: np.ndarray  # (3, 3) covariance of ore pixels about their cell mean (calm all-ore cells, one cell row per band)
    mask: np.ndarray | None  # (H, W) bool ore mask, when the label image is wanted


def scan_cells(src: SectionSource, ore: OreThreshold, f: int, keep_mask: bool, band: int = 256) -> CellScan:
    """Read ``src`` once in bands of rows; per ``f`` x ``f`` cell count the ore pixels and sum their RGB
    (integer sums of the masked band, rows first, then columns: no float image is ever made)."""
    W, H = src.width, src.height
    band = max(f, band // f * f)
    gh, gw = -(-H // f), -(-W // f)
    cols = np.arange(0, W, f)
    count = np.zeros((gh, gw), np.uint16)
    sums = np.zeros((gh, gw, 3), np.float32)
    spread = np.zeros((gh, gw), np.uint8)
    noise_sum, noise_n = np.zeros((3, 3), np.float64), 0
    mask_all = np.zeros((H, W), bool) if keep_mask else None
    xs = np.arange(W)
    for y0 in range(0, H, band):
        y1 = min(H, y0 + band)
        rgb = src.read_rows(y0, y1)
        mask = ore.mask_at(rgb, np.arange(y0, y1), xs)
        if mask_all is not None:
            mask_all[y0:y1] = mask
        masked = rgb * mask[:, :, None]
        m8 = mask.view(np.uint8)
        h = y1 - y0
        if h % f:  # the last band: pad to whole cells (zeros count nothing)
            pad = f - h % f
            masked = np.pad(masked, ((0, pad), (0, 0), (0, 0)))
            m8 = np.pad(m8, ((0, pad), (0, 0)))
        gb = rgb[:, :, 1:]  # green and blue: where the ore minerals' colours differ most
        hi = np.where(mask[:, :, None], gb, np.uint8(0))
        lo = np.where(mask[:, :, None], gb, np.uint8(255))
        if h % f:
            hi = np.pad(hi, ((0, pad), (0, 0), (0, 0)))
            lo = np.pad(lo, ((0, pad), (0, 0), (0, 0)), constant_values=255)
        top = np.maximum.reduceat(hi.reshape(-1, f, W, 2).max(1), cols, axis=1)
        bottom = np.minimum.reduceat(lo.reshape(-1, f, W, 2).min(1), cols, axis=1)
        rows = masked.reshape(-1, f, W, 3).sum(1, dtype=np.uint16)
        band_spread = (top.astype(np.int16) - bottom).clip(0).max(2).astype(np.uint8)
        spread[y0 // f : y0 // f + len(rows)] = band_spread
        if h >= f and W >= f:  # pixel noise: spread of pixels about their cell mean, first cell row of the band
            wf = W // f
            cells = rgb[:f, : wf * f].reshape(f, wf, f, 3).transpose(1, 0, 2, 3).reshape(wf, f * f, 3)
            whole = mask[:f, : wf * f].reshape(f, wf, f).all((0, 2))
            if whole.any():
                calm = whole & (band_spread[0, :wf] <= np.median(band_spread[0, :wf][whole]))
                d = cells[calm].astype(np.float32)
                d -= d.mean(1, keepdims=True)
                d *= ore.gain_at(np.array([y0]), np.arange(wf)[calm] * f)[0][:, None, None]
                d = d.reshape(-1, 3)
                noise_sum += d.T @ d
                noise_n += len(d) - int(calm.sum())
        g0 = y0 // f
        sums[g0 : g0 + len(rows)] = np.add.reduceat(rows, cols, axis=1)
        count[g0 : g0 + len(rows)] = np.add.reduceat(m8.reshape(-1, f, W).sum(1, dtype=np.uint16), cols, axis=1)
    cy = np.minimum(np.arange(gh) * f + f // 2, H - 1)
    cx = np.minimum(np.arange(gw) * f + f // 2, W - 1)
    gain = ore.gain_at(cy, cx)
    colour = sums / np.maximum(count, 1)[:, :, None]
    colour *= gain[:, :, None]
    size_y = np.minimum(f, H - np.arange(gh) * f)
    size_x = np.minimum(f, W - np.arange(gw) * f)
    full = count == (size_y[:, None] * size_x[None, :])
    noise = (noise_sum / max(noise_n, 1)).astype(np.float32)
    return CellScan(f, count, colour, full, gain, spread, noise, mask_all)


def cell_prior(prior: np.ndarray, cell: int, f: int, shape: tuple[int, int], H: int, W: int) -> np.ndarray:
    """(gh, gw, C + 1) tile prior at the centre of every ``f``-px cell (from the ``cell``-px prior grid)."""
    gh, gw = shape
    py = np.minimum(np.minimum(np.arange(gh) * f + f // 2, H - 1) // cell, prior.shape[0] - 1)
    px = np.minimum(np.minimum(np.arange(gw) * f + f // 2, W - 1) // cell, prior.shape[1] - 1)
    return prior[py[:, None], px[None, :]]


def learn_colours(x: np.ndarray, p: np.ndarray, n_known: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per known class: centre and covariance of flattened colour (``x`` (n, 3): clean cell colours, ``p``
    (n, C + 1): their tile prior), seeded on confidently-predicted cells and refined by :func:`refine_em`.
    Returns (centre (C, 3), covariance (C, 3, 3); inf without a model, samples (C,))."""
    keep = ~np.isnan(p[:, 0])
    x, p = x[keep], p[keep, :n_known]
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-6)  # among the known classes (colour models are of those)
    mean = np.zeros((n_known, 3), np.float32)
    sigma = np.full((n_known, 3, 3), np.inf, np.float32)
    samples = np.zeros(n_known, np.int64)
    if not len(x):
        return mean, sigma, samples
    best = p.argmax(1)
    conf = p[np.arange(len(p)), best] >= CONFIDENT
    for k in range(n_known):
        sel = x[conf & (best == k)]
        samples[k] = len(sel)
        if len(sel) >= MIN_COLOUR_SAMPLES:
            if len(sel) > EM_SAMPLES:
                sel = sel[np.random.default_rng(seed + k).choice(len(sel), EM_SAMPLES, replace=False)]
            mean[k], sigma[k] = dominant_mode(sel)
    if len(x) > EM_SAMPLES:
        pick = np.random.default_rng(seed).choice(len(x), EM_SAMPLES, replace=False)
        x, p = x[pick], p[pick]
    mean, sigma = refine_em(x, p, mean, sigma)
    return mean, sigma, samples


def phase_scores(colour: np.ndarray, pr: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(n, C + 1) log prior x PRIOR_WEIGHT + log p(colour | phase); the last column is ``unknown`` (as likely
    as any odd colour). Rows without a tile prior (ore in tiles too poor to classify): colour alone decides."""
    n_known = len(mean)
    pr = pr.copy()
    uncovered = np.isnan(pr[:, 0])
    if uncovered.any():
        pr[uncovered] = np.r_[np.full(n_known, 1.0 / n_known, np.float32), 0.0]
    score = PRIOR_WEIGHT * np.log(np.maximum(pr, PRIOR_FLOOR))
    score[:, :n_known] += colour_loglik(colour, mean, cov)
    score[:, n_known] += LOG_FLAT + np.log(OUTLIER_SHARE)
    return score


def boundary_cells(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bool (gh, gw): ore cells with a differently-labelled ore cell among their 4 neighbours,
    uint32 (gh, gw): bit set of the phase codes in each cell's 3 x 3 neighbourhood)."""
    p = np.pad(lab, 1)
    gh, gw = lab.shape
    bits = np.zeros(lab.shape, np.uint32)
    edge = np.zeros(lab.shape, bool)
    for dy in range(3):
        for dx in range(3):
            nb = p[dy : dy + gh, dx : dx + gw]
            bits |= np.where(nb > 0, np.left_shift(np.uint32(1), nb.astype(np.uint32)), np.uint32(0)).astype(np.uint32)
            if (dy - 1) * (dx - 1) == 0:  # a boundary: a 4-neighbour of another phase
                edge |= (nb > 0) & (nb != lab)
    return edge & (lab > 0), bits


def refine_boundaries(src: SectionSource, ore: OreThreshold, scan: CellScan, lab: np.ndarray, prior_c: np.ndarray,
                      mean: np.ndarray, cov_px: np.ndarray, block_counts: np.ndarray, block_px: int,
                      labels: np.ndarray | None, boundary: tuple[np.ndarray, np.ndarray], band: int = 256) -> int:
    """Pixels of cells on a boundary between two phases get their own phase, chosen among the phases of the
    3 x 3 cell neighbourhood by the pixel's own colour (model ``cov_px``: cell spread + pixel noise) and the
    cell's prior. ``block_counts`` (from the cells) is corrected in place, and ``labels`` if given, so the
    counts are the same with or without a label image. Returns the number of cells decided per pixel."""
    f = scan.f
    edge, bits = boundary[0].copy(), boundary[1]
    # a boundary cell holding one phase (the boundary runs along its side) has the spread of sensor noise;
    # one holding two phases spreads more: only those are decided pixel by pixel
    interior = scan.full & (lab > 0) & ~edge
    noise = float(np.median(scan.spread[interior])) if interior.any() else 0.0
    edge &= scan.spread > SPREAD_FACTOR * noise
    if not edge.any():
        return 0
    W, H = src.width, src.height
    n_phases = block_counts.shape[1]
    bw = -(-W // block_px)
    band = max(f, band // f * f)
    codes = np.arange(1, len(mean) + 2, dtype=np.uint32)
    oy, ox = np.mgrid[:f, :f]
    flat_counts = block_counts.reshape(-1)
    for y0 in range(0, H, band):
        y1 = min(H, y0 + band)
        gy, gx = np.nonzero(edge[y0 // f : -(-y1 // f)])
        if not len(gy):
            continue
        gy = gy + y0 // f
        rgb = src.read_rows(y0, y1)
        mask = scan.mask[y0:y1] if scan.mask is not None else ore.mask_at(rgb, np.arange(y0, y1), np.arange(W))
        # the cells' own counts leave their phase ...
        cell_block = (gy * f // block_px) * bw + gx * f // block_px
        flat_counts -= np.bincount(cell_block * n_phases + lab[gy, gx], weights=scan.count[gy, gx],
                                   minlength=len(flat_counts)).astype(np.int64)
        py = (gy[:, None] * f + oy.ravel()[None, :]).ravel()
        px = (gx[:, None] * f + ox.ravel()[None, :]).ravel()
        cell_i = np.repeat(np.arange(len(gy)), f * f)
        inside = (py < y1) & (px < W)
        py, px, cell_i = py[inside], px[inside], cell_i[inside]
        ore_px = mask[py - y0, px]
        py, px, cell_i = py[ore_px], px[ore_px], cell_i[ore_px]
        gain = ore.gain[np.minimum(py // ore.block, ore.gain.shape[0] - 1), np.minimum(px // ore.block, ore.gain.shape[1] - 1)]
        colour = rgb[py - y0, px].astype(np.float32) * gain[:, None]
        score = phase_scores(colour, prior_c[gy[cell_i], gx[cell_i]], mean, cov_px)
        allowed = (bits[gy[cell_i], gx[cell_i]][:, None] >> codes[None, :]) & 1
        score[allowed == 0] = -np.inf
        new = score.argmax(1).astype(np.uint8) + 1
        # ... and each pixel is counted in its own
        flat_counts += np.bincount(((py // block_px) * bw + px // block_px) * n_phases + new,
                                   minlength=len(flat_counts))
        if labels is not None:
            labels[py, px] = new
    return int(edge.sum())


def cell_block_counts(scan: CellScan, lab: np.ndarray, n_phases: int, block_px: int, W: int, H: int) -> np.ndarray:
    """(n_blocks, n_phases) pixels per phase and ``block_px`` block, a cell's ore pixels all in its phase
    (:func:`refine_boundaries` then corrects the mixed cells). Column 0 (background) = the rest of the block."""
    bw, bh = -(-W // block_px), -(-H // block_px)
    f = scan.f
    gh, gw = lab.shape
    block = ((np.arange(gh) * f // block_px)[:, None] * bw + (np.arange(gw) * f // block_px)[None, :]).ravel()
    out = np.bincount(block * n_phases + lab.ravel(), weights=scan.count.ravel(),
                      minlength=bh * bw * n_phases).reshape(bh * bw, n_phases).astype(np.int64)
    area = np.outer(np.bincount(np.arange(H) // block_px, minlength=bh), np.bincount(np.arange(W) // block_px, minlength=bw))
    out[:, 0] = area.ravel() - out[:, 1:].sum(1)
    return out


def bootstrap_ci(block_counts: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles of area % per phase, resampling blocks with replacement."""
    totals = block_counts.sum(1)
    rng = np.random.default_rng(seed)
    n = len(block_counts)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # (B, n)
    pct = 100.0 * (weights @ block_counts) / np.maximum(weights @ totals, 1)[:, None]
    return np.percentile(pct, 2.5, axis=0), np.percentile(pct, 97.5, axis=0)


def abundance_table(phases: list[str], block_counts: np.ndarray, n_boot: int = 1000) -> dict[str, Any]:
    """Area % per phase over the image and over ore pixels, each with a bootstrap 95 % interval."""
    counts = block_counts.sum(0)
    total = int(counts.sum())
    ore_px = total - int(counts[0])
    lo, hi = bootstrap_ci(block_counts, n_boot)
    rows = []
    for k, name in enumerate(phases):
        kind = "gangue/background" if k == 0 else "unknown" if name == UNKNOWN else "mineral"
        rows.append({"phase": name, "kind": kind, "pixels": int(counts[k]),
                     "area_percent": 100.0 * counts[k] / total, "ci95_low": float(lo[k]), "ci95_high": float(hi[k]),
                     "ore_percent": None if k == 0 else (100.0 * counts[k] / ore_px if ore_px else 0.0)})
    return {"total_pixels": total, "ore_pixels": ore_px, "blocks": len(block_counts),
            "ci_method": f"bootstrap over {len(block_counts)} blocks, {n_boot} resamples (spatial sampling spread)",
            "phases": rows}


def map_pixels(
    predictor: Predictor,
    source: SectionSource | np.ndarray,
    *,
    tile: int = 224,
    stride: int | None = None,
    background_luma: float | None = None,
    min_ore_share: float = 0.005,
    prior_px: int | None = None,
    block_px: int = 256,
    colour_cell: int = 4,
    label_max_pixels: int = 100_000_000,
    band: int = 512,
    canvas_max_side: int = 1600,
    progress: bool = True,
) -> PixelMap:
    """Pixel-true map of ``source`` (see module docstring). ``background_luma`` None: per-image threshold."""
    src = ArraySource(source) if isinstance(source, np.ndarray) else source
    W, H = src.width, src.height
    t0 = time.perf_counter()
    ore = estimate_threshold(src) if background_luma is None else fixed_threshold(src, background_luma)
    t_ore = time.perf_counter() - t0
    tile_eff = min(tile, W, H)
    stride = stride or max(1, tile_eff // 2)
    f = math.gcd(max(1, colour_cell), block_px)  # a cell lies in one count block
    keep_mask = W * H <= label_max_pixels
    # the cell scan needs only the ore threshold: an in-memory image is scanned in a worker thread while the
    # model runs (numpy and torch release the GIL); a file-backed source is read by one thread at a time
    overlap = isinstance(src, ArraySource)
    pool = ThreadPoolExecutor(1) if overlap else None
    job = pool.submit(scan_cells, src, ore, f, keep_mask, band) if pool is not None else None
    try:
        m = map_section(predictor, src, tile=tile_eff, stride=min(stride, tile_eff), min_ore_share=min_ore_share,
                        canvas_max_side=canvas_max_side, progress=progress, ore=ore)
        t1 = time.perf_counter()
        scan = job.result() if job is not None else scan_cells(src, ore, f, keep_mask, band=band)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    t_wait = time.perf_counter() - t1
    cell = prior_px or max(4, m.grid.stride // 4)
    prior = prior_grid(m, cell)
    n_known = len(m.labels)
    prior_c = cell_prior(prior, cell, f, scan.count.shape, H, W)
    clean = scan.full & ~np.isnan(prior_c[:, :, 0])
    mean, sigma, samples = learn_colours(scan.colour[clean], prior_c[clean], n_known)
    t2 = time.perf_counter()
    has_ore = scan.count > 0
    lab = np.zeros(scan.count.shape, np.uint8)
    lab[has_ore] = phase_scores(scan.colour[has_ore], prior_c[has_ore], mean, sigma).argmax(1).astype(np.uint8) + 1
    phases = [BACKGROUND, *m.labels, UNKNOWN]
    labels = None
    if keep_mask:
        labels = np.repeat(np.repeat(lab, f, 0)[:H], f, 1)[:, :W]
        labels *= scan.mask
    block_counts = cell_block_counts(scan, lab, len(phases), block_px, W, H)
    refined = 0
    if f > 1:
        boundary = boundary_cells(lab)
        cov_px = sigma + scan.noise[None]
        refined = refine_boundaries(src, ore, scan, lab, prior_c, mean, cov_px, block_counts, block_px, labels,
                                    boundary, band=band)
    t3 = time.perf_counter()
    known = np.isfinite(sigma[:, 0, 0])
    colour = {name: {"median_rgb_flattened": [round(float(v), 1) for v in mean[k]] if known[k] else None,
                     "sigma": [round(float(v), 1) for v in np.sqrt(np.diag(sigma[k]))] if known[k] else None,
                     "samples": int(samples[k])} for k, name in enumerate(m.labels)}
    pm = PixelMap(m, ore, phases, block_counts, labels, colour, abundance_table(phases, block_counts),
                  settings={**m.settings, "prior_px": cell, "block_px": block_px, "colour_cell": colour_cell, "min_ore_share": min_ore_share,
                            "abundance": "pixel (overlapping tiles + colour)"},
                  timing={"threshold_s": t_ore, "tiles_s": m.timing["total_s"], "model_s": m.timing["model_s"],
                          "scan_wait_s": t_wait, "cells_refined": refined, "colour_s": t2 - t1, "pixels_s": t3 - t2, "total_s": time.perf_counter() - t0})
    return pm
