"""Pixel-true modal abundance: every ore pixel gets its own phase, not its tile's top class.

Why: giving every ore pixel of a tile to the tile's answer under-counts inclusions and fracture fills
(gold in pyrite, chalcopyrite veinlets), which are exactly the minerals a lab weighs. Steps:

1. **Ore pixels** by a per-image threshold on illumination-flattened luma (:mod:`.ore`).
2. **Tiles** overlap (default stride = tile / 2) and are classified by the one ``Predictor``
   (:func:`.core.map_section`, unchanged).
3. **Prior per pixel**: the class probabilities of every tile covering a pixel, averaged with a
   tapered window (tile centres count more than edges), on a grid of ``prior_px`` cells. Tiles under
   the unknown threshold vote for ``unknown``.
4. **Colour per pixel**: each mineral's reflected colour (illumination-flattened RGB; robust median and
   MAD) is learnt *from this section*, from ore pixels whose prior is confident (>= 0.8). A pixel's
   phase is ``argmax log prior + log p(colour | phase)``; the colour likelihood is a Gaussian mixed with
   5 % of a flat density, so edge pixels and odd colours fall back to the prior. Minerals never seen
   confidently get the flat density (their pixels are decided by the prior alone).
5. **Counts** per block of ``block_px`` (area % with a 95 % interval: bootstrap over blocks - the
   spread from where the grains happen to lie, not the classifier's error) and, when the image is at
   most ``label_max_pixels``, the full-resolution label image for grain statistics (:mod:`.grains`).

Memory: the prior grid (image / prior_px² x classes floats), one band of rows, and the optional
uint8 label image. The image is read three times (threshold sample, tiles, pixels), never decoded twice:
a PIL-decoded image is held as an array; ``.npy``/TIFF sources re-read their rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..predict import UNKNOWN, Predictor
from .ore import OreThreshold, estimate_threshold, fixed_threshold
from .sources import ArraySource, SectionSource
from .tiler import BACKGROUND, STATUS_MINERAL, STATUS_UNKNOWN, SectionMap, map_section

CONFIDENT = 0.8  # prior share above which a pixel teaches its phase's colour
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
EM_SAMPLES = 30_000
INLIER_D2 = 11.34  # chi-square, 3 degrees of freedom, 99 %
EDGE_Z = 3.0  # a pixel further than this many noise units from its window mean keeps its own colour  # ore pixels sampled to refine the colour models


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


def prior_grid(m: SectionMap, cell: int) -> np.ndarray:
    """(gh, gw, C + 1) averaged tile probabilities per ``cell`` px (last column: unknown); NaN where no
    classified tile covers the cell."""
    gh, gw = -(-m.height // cell), -(-m.width // cell)
    c = len(m.labels)
    acc = np.zeros((gh, gw, c + 1), np.float32)
    wsum = np.zeros((gh, gw), np.float32)
    for (x0, y0, x1, y1), status, p in zip(m.grid.boxes(), m.status, m.probs):
        if status not in (STATUS_MINERAL, STATUS_UNKNOWN):
            continue
        gx0, gy0 = x0 // cell, y0 // cell
        gx1, gy1 = -(-x1 // cell), -(-y1 // cell)
        w = taper(gy1 - gy0)[:, None] * taper(gx1 - gx0)[None, :]
        vec = np.zeros(c + 1, np.float32)
        if status == STATUS_UNKNOWN:
            vec[c] = 1.0
        else:
            vec[:c] = p
        acc[gy0:gy1, gx0:gx1] += w[:, :, None] * vec
        wsum[gy0:gy1, gx0:gx1] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        return acc / wsum[:, :, None]


def box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum over a (2r+1) x (2r+1) window along the first two axes (zero outside), via cumulative sums."""
    for axis in (0, 1):
        c = np.cumsum(a, axis=axis, dtype=np.float32)
        n = a.shape[axis]
        lo_idx = np.arange(n) - r - 1
        hi = np.take(c, np.minimum(np.arange(n) + r, n - 1), axis=axis)
        lo = np.take(c, np.maximum(lo_idx, 0), axis=axis)
        shape = [1] * a.ndim
        shape[axis] = n
        a = hi - lo * (lo_idx >= 0).reshape(shape)
    return a


def ore_colours(src: SectionSource, ore: OreThreshold, y0: int, y1: int, radius: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``y0:y1``: (rgb uint8, ore mask, colour) where colour is the illumination-flattened RGB
    averaged over the ore pixels of a (2r+1)² window (normalised convolution: gangue never mixes in;
    sensor noise drops ~(2r+1)-fold, so minerals of close colour - pyrite, arsenopyrite - separate)."""
    a, b = max(0, y0 - radius), min(src.height, y1 + radius)
    rgb = src.read_rows(a, b)
    ys, xs = np.arange(a, b), np.arange(src.width)
    mask = ore.mask_at(rgb, ys, xs)
    flat = rgb.astype(np.float32) * ore.gain_at(ys, xs)[:, :, None]
    if radius and mask.any():
        num = box_sum(flat * mask[:, :, None], radius)
        den = box_sum(mask.astype(np.float32), radius)
        smooth = num / np.maximum(den, 1.0)[:, :, None]
        # edge-aware: where a pixel differs from its window by more than noise (a grain edge, an inclusion
        # a few px across), it keeps its own colour instead of a blend of two minerals
        diff = np.abs(smooth - flat)
        dev = np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])
        noise = 1.4826 * float(np.median(dev[mask][::7])) + 1.0  # a subsample is plenty for a median
        flat = np.where((dev <= EDGE_Z * noise)[:, :, None], smooth, flat)
    k0, k1 = y0 - a, y0 - a + (y1 - y0)
    return rgb[k0:k1], mask[k0:k1], flat[k0:k1]


def learn_colours(src: SectionSource, ore: OreThreshold, prior: np.ndarray, cell: int, n_known: int,
                  radius: int, band: int = 128, step: int = 2, budget: int = 2_000_000
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per known class: centre and covariance of flattened colour over confidently-predicted ore pixels
    (every ``step``-th row and column of evenly spread bands covering about ``budget`` pixels).
    Returns (centre (C, 3), covariance (C, 3, 3); inf without a model, samples (C,))."""
    chunks: list[list[np.ndarray]] = [[] for _ in range(n_known)]
    all_x: list[np.ndarray] = []
    all_p: list[np.ndarray] = []
    xs = np.arange(0, src.width, step)
    every = max(1, src.width * src.height // budget)  # use one band in ``every``
    for y0 in range(0, src.height, band * every):
        y1 = min(src.height, y0 + band)
        ys = np.arange(y0, y1, step)
        _, mask, flat = ore_colours(src, ore, y0, y1, radius)
        mask, flat = mask[::step, ::step], flat[::step, ::step][mask[::step, ::step]]
        if not mask.any():
            continue
        pr = prior[(ys // cell)[:, None], (xs // cell)[None, :]][mask]
        all_x.append(flat)
        all_p.append(pr)
        best = np.nan_to_num(pr, nan=0.0).argmax(1)
        conf = np.take_along_axis(np.nan_to_num(pr, nan=0.0), best[:, None], 1)[:, 0] >= CONFIDENT
        for k in range(n_known):
            sel = conf & (best == k)
            if sel.any():
                chunks[k].append(flat[sel])
    mean = np.zeros((n_known, 3), np.float32)
    sigma = np.full((n_known, 3, 3), np.inf, np.float32)
    samples = np.zeros(n_known, np.int64)
    for k, parts in enumerate(chunks):
        if not parts:
            continue
        x = np.concatenate(parts)
        samples[k] = len(x)
        if len(x) >= MIN_COLOUR_SAMPLES:
            mean[k], sigma[k] = dominant_mode(x)
    if all_x:
        x, p = np.concatenate(all_x), np.concatenate(all_p)
        keep = ~np.isnan(p[:, 0])
        x, p = x[keep], p[keep, :n_known]
        if len(x) > EM_SAMPLES:
            pick = np.random.default_rng(0).choice(len(x), EM_SAMPLES, replace=False)
            x, p = x[pick], p[pick]
        mean, sigma = refine_em(x, p, mean, sigma)
    return mean, sigma, samples


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
    out = np.full((len(flat), len(mean)), LOG_FLAT + np.log(OUTLIER_SHARE), np.float32)
    for k in np.nonzero(np.isfinite(cov[:, 0, 0]))[0]:
        g = -0.5 * d2[:, k] - 0.5 * np.log(np.linalg.det(cov[k])) - 1.5 * np.log(2 * np.pi)
        out[:, k] = np.logaddexp(np.log1p(-OUTLIER_SHARE) + g, np.log(OUTLIER_SHARE) + LOG_FLAT)
    return out


def label_pixels(mask: np.ndarray, colour: np.ndarray, ys: np.ndarray, xs: np.ndarray, prior: np.ndarray,
                 cell: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(h, w) uint8 phase codes of a band (from :func:`ore_colours`): 0 background, 1..C classes, C+1 unknown."""
    n_known = len(mean)
    out = np.zeros(mask.shape, np.uint8)
    if not mask.any():
        return out
    gy, gx = np.nonzero(mask)
    pr = prior[(ys[gy] // cell), (xs[gx] // cell)]  # (n, C + 1)
    uncovered = np.isnan(pr[:, 0])
    if uncovered.any():  # ore in tiles too poor to classify: colour alone decides among the known classes
        pr[uncovered] = np.r_[np.full(n_known, 1.0 / n_known, np.float32), 0.0]
    flat = colour[gy, gx]
    score = PRIOR_WEIGHT * np.log(np.maximum(pr, PRIOR_FLOOR))
    score[:, :n_known] += colour_loglik(flat, mean, cov)
    score[:, n_known] += LOG_FLAT + np.log(OUTLIER_SHARE)  # unknown: as likely as any odd colour
    out[gy, gx] = score.argmax(1).astype(np.uint8) + 1
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
    colour_radius: int = 1,
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
    m = map_section(predictor, src, tile=tile_eff, stride=min(stride, tile_eff), min_ore_share=min_ore_share,
                    canvas_max_side=canvas_max_side, progress=progress, ore=ore)
    t1 = time.perf_counter()
    cell = prior_px or max(4, m.grid.stride // 4)
    prior = prior_grid(m, cell)
    n_known = len(m.labels)
    mean, sigma, samples = learn_colours(src, ore, prior, cell, n_known, colour_radius)
    t2 = time.perf_counter()
    phases = [BACKGROUND, *m.labels, UNKNOWN]
    bw, bh = -(-W // block_px), -(-H // block_px)
    block_counts = np.zeros((bh * bw, len(phases)), np.int64)
    labels = np.zeros((H, W), np.uint8) if W * H <= label_max_pixels else None
    xs = np.arange(W)
    bx = xs // block_px
    for y0 in range(0, H, band):
        y1 = min(H, y0 + band)
        ys = np.arange(y0, y1)
        _, mask, colour_band = ore_colours(src, ore, y0, y1, colour_radius)
        lab = label_pixels(mask, colour_band, ys, xs, prior, cell, mean, sigma)
        if labels is not None:
            labels[y0:y1] = lab
        block = (ys // block_px)[:, None] * bw + bx[None, :]
        block_counts += np.bincount((block * len(phases) + lab).ravel(),
                                    minlength=bh * bw * len(phases)).reshape(bh * bw, len(phases))
    t3 = time.perf_counter()
    known = np.isfinite(sigma[:, 0, 0])
    colour = {name: {"median_rgb_flattened": [round(float(v), 1) for v in mean[k]] if known[k] else None,
                     "sigma": [round(float(v), 1) for v in np.sqrt(np.diag(sigma[k]))] if known[k] else None,
                     "samples": int(samples[k])} for k, name in enumerate(m.labels)}
    pm = PixelMap(m, ore, phases, block_counts, labels, colour, abundance_table(phases, block_counts),
                  settings={**m.settings, "prior_px": cell, "block_px": block_px, "colour_radius": colour_radius, "min_ore_share": min_ore_share,
                            "abundance": "pixel (overlapping tiles + colour)"},
                  timing={"threshold_s": t_ore, "tiles_s": m.timing["total_s"], "model_s": m.timing["model_s"],
                          "colour_s": t2 - t1, "pixels_s": t3 - t2, "total_s": time.perf_counter() - t0})
    return pm
