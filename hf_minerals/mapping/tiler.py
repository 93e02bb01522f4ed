"""Whole-section mapping: stream tiles through the predictor, account area exactly, keep a small canvas.

Background rule (reflected light: gangue, resin and pits reflect < ~6 %, ore minerals > ~15 %): a pixel
is *dark* when its luma (0.299 R + 0.587 G + 0.114 B, 0-255) is below ``background_luma``. A tile whose
owned area holds less than ``min_ore_share`` bright pixels is a background tile: it is not classified
and all its pixels count as gangue/background. In a classified tile the bright pixels take the tile's
answer (a mineral, or ``unknown`` under the calibrated threshold or over the open-set threshold — a bright
tile unlike any known mineral, e.g. a blank or noisy field) and the dark ones count as gangue/background.
So modal abundance is measured in pixels, not whole tiles.

Memory: one band of ``tile`` rows x image width (x3 bytes) + one batch of tiles + the display canvas
(at most ``canvas_max_side`` px a side), whatever the image size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..colour import normalised_view
from ..predict import UNKNOWN, Predictor
from .sources import ArraySource, SectionSource, check_section_size, section_reference
from .tiles import TileGrid

BACKGROUND = "background"
#: Tile status codes in ``SectionMap.status``.
STATUS_BACKGROUND, STATUS_MINERAL, STATUS_UNKNOWN = 0, 1, 2
DEFAULT_BACKGROUND_LUMA = 105
DEFAULT_MIN_ORE_SHARE = 0.02
#: The open-set score judges only tiles with at least this share of bright (ore) pixels: its colour part reads
#: the brightest decile of a tile as the ore, which under 10 % ore is gangue. Thinner tiles (their ore is a
#: sliver of the tile's area) are decided by the confidence threshold alone.
OOD_MIN_ORE_SHARE = 0.10


@dataclass
class SectionMap:
    """Everything one mapping run found; ``abundance`` is the modal-abundance table."""

    width: int
    height: int
    grid: TileGrid
    labels: list[str]
    probs: np.ndarray  # (N, C) float32 calibrated probabilities; NaN rows for background tiles
    status: np.ndarray  # (N,) uint8: 0 background, 1 mineral, 2 unknown
    ood_scores: np.ndarray  # (N,) float32 open-set score (inf: featureless/noise); NaN for background tiles or no scorer
    label_index: np.ndarray  # (N,) int16: argmax class, -1 for background tiles
    bright_px: np.ndarray  # (N,) bright pixels in the tile's owned area
    owned_px: np.ndarray  # (N,) owned pixels
    canvas_scale: int  # image px per canvas px
    thumbnail: np.ndarray  # (h, w, 3) uint8 downsampled photomicrograph
    canvas_tile: np.ndarray  # (h, w) int32 tile index owning each canvas pixel
    canvas_bright: np.ndarray  # (h, w) bool bright (ore) pixels on the canvas
    settings: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    abundance: dict[str, Any] = field(default_factory=dict)

    def tile_names(self) -> list[str]:
        """Answer per tile: a mineral, ``unknown`` or ``background``."""
        return [BACKGROUND if s == STATUS_BACKGROUND else UNKNOWN if s == STATUS_UNKNOWN else self.labels[i]
                for s, i in zip(self.status, self.label_index)]


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (0-255) of an (..., 3) uint8 array, in integer arithmetic (uint16)."""
    y = np.multiply(rgb[..., 0], 77, dtype=np.uint16)
    y += np.multiply(rgb[..., 1], 150, dtype=np.uint16)
    y += np.multiply(rgb[..., 2], 29, dtype=np.uint16)
    return y >> 8


def tile_ood_threshold(predictor: Predictor) -> float | None:
    """The open-set threshold for section tiles: calibration's tile threshold (fitted on tile-like crops of
    validation images), else the image threshold; None without an open-set score."""
    if predictor.ood is None:
        return None
    return predictor.ood_tile_threshold if predictor.ood_tile_threshold is not None else predictor.ood_threshold


def score_tiles(predictor: Predictor, tiles: torch.Tensor, reference: np.ndarray | None, chunk: int
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's whole work on a batch of uint8 tiles (B, 3, t, t): calibrated probabilities and open-set
    scores (None without a scorer). One function, so the benchmark's "pure model time" runs exactly the
    forward passes the mapper runs (both views with photo views, the open-set features with a scorer)."""
    pixel_values = torch.cat([predictor.preprocess(c) for c in tiles.split(chunk)])
    ood = None
    if predictor.ood is None:
        logits = predictor.logits(pixel_values)
    else:
        logits, features = predictor.forward(pixel_values)
        ood = predictor.ood_scores(pixel_values, features)
    if reference is not None:  # photo views: average with the tiles normalised by the SECTION's reference
        views = [normalised_view(t, reference) for t in tiles]
        normalised = predictor.logits(torch.cat([predictor.preprocess(views[j : j + chunk])
                                                 for j in range(0, len(views), chunk)]))
        logits = predictor.combine_views(logits, normalised, reference)
    return predictor.probabilities(logits), ood


def preprocess_chunk(tile: int) -> int:
    """Tiles preprocessed at a time (~4 MP): bounded float copies."""
    return max(1, (1 << 22) // (tile * tile))


def map_section(
    predictor: Predictor,
    source: SectionSource | np.ndarray,
    *,
    tile: int = 224,
    stride: int | None = None,
    background_luma: int = DEFAULT_BACKGROUND_LUMA,
    min_ore_share: float = DEFAULT_MIN_ORE_SHARE,
    canvas_max_side: int = 1600,
    progress: bool = True,
    unknown_threshold: float | None = None,
    ore: Any = None,
) -> SectionMap:
    """Classify every non-background tile of ``source`` and account its area (see module docstring).

    ``unknown_threshold``: this call's threshold (a Space request's); None = the predictor's own.
    ``ore``: an ``ore.OreThreshold`` (per-image, illumination-corrected) used instead of ``background_luma``.
    A predictor with ``photo_views`` normalises every tile by the white reference of the whole section.
    """
    threshold = predictor.unknown_threshold if unknown_threshold is None else unknown_threshold
    src = ArraySource(source) if isinstance(source, np.ndarray) else source
    check_section_size(src.width, src.height)  # the shared smallest side: never a 1-px tile read as "100 %"
    calibration = getattr(predictor, "reflectance", None)
    if calibration is not None:  # frames stretched over the whole section, applied band by band, not per tile
        from .sources import CalibratedSource

        src = CalibratedSource(src, calibration)
    reference = None
    if getattr(predictor, "photo_views", False):  # one white reference for the whole section, not per tile
        pinned = getattr(predictor, "photo_reference", None)
        reference = section_reference(src) if pinned is None else pinned
    return _map(predictor, src, tile, stride, background_luma, min_ore_share, canvas_max_side, progress, threshold,
                ore, reference)


def _map(predictor: Predictor, src: SectionSource, tile: int, stride: int | None, background_luma: int,
         min_ore_share: float, canvas_max_side: int, progress: bool, threshold: float | None, ore: Any,
         reference: np.ndarray | None = None) -> SectionMap:
    from tqdm.auto import tqdm

    W, H = src.width, src.height
    tile_eff = min(tile, W, H)  # an image smaller than a tile is one (smaller) tile, never padded
    stride_eff = min(stride or tile, tile_eff)
    grid = TileGrid.build(W, H, tile_eff, stride_eff)
    rows, cols = grid.shape
    n, c = len(grid), len(predictor.labels)
    scale = max(1, -(-max(W, H) // canvas_max_side))
    ch, cw = -(-H // scale), -(-W // scale)
    out = SectionMap(
        W, H, grid, list(predictor.labels), np.full((n, c), np.nan, np.float32), np.zeros(n, np.uint8),
        np.full(n, np.nan, np.float32), np.full(n, -1, np.int16), np.zeros(n, np.int64), np.zeros(n, np.int64), scale,
        np.zeros((ch, cw, 3), np.uint8), np.zeros((ch, cw), np.int32), np.zeros((ch, cw), bool),
        settings={"tile": tile_eff, "stride": stride_eff,
                  "background_luma": background_luma if ore is None else ore.to_dict(),
                  "min_ore_share": min_ore_share, "unknown_threshold": threshold,
                  "ood_threshold": tile_ood_threshold(predictor), "ood_min_ore_share": OOD_MIN_ORE_SHARE,
                  "temperature": predictor.temperature, "source": src.kind},
    )
    xs, ys = grid.xs, grid.ys
    pending: list[torch.Tensor] = []
    pending_idx: list[int] = []
    t_model = t_read = 0.0
    t_start = time.perf_counter()

    def flush() -> None:
        nonlocal t_model
        t0 = time.perf_counter()
        probs, ood = score_tiles(predictor, torch.stack(pending), reference, chunk)
        if ood is not None:
            out.ood_scores[pending_idx] = ood
        out.probs[pending_idx] = probs
        t_model += time.perf_counter() - t0
        pending.clear()
        pending_idx.clear()

    # canvas: nearest-pixel samples at multiples of ``scale``; canvas column -> owning tile column
    col_of_cx = np.searchsorted(xs.own_end, np.arange(cw) * scale, side="right")
    chunk = preprocess_chunk(tile_eff)
    bar = tqdm(total=n, unit="tile", desc="map", disable=not progress)
    for r in range(rows):
        t0 = time.perf_counter()
        y0 = int(ys.starts[r])
        band = src.read_rows(y0, y0 + tile_eff)
        t_read += time.perf_counter() - t0
        band_t = torch.from_numpy(np.require(band, requirements="W")).permute(2, 0, 1)
        oy0, oy1 = int(ys.own_start[r]) - y0, int(ys.own_end[r]) - y0
        cy0, cy1 = -(-int(ys.own_start[r]) // scale), -(-int(ys.own_end[r]) // scale)
        if cy1 > cy0:
            sub = band[np.arange(cy0, cy1) * scale - y0][:, ::scale]
            out.thumbnail[cy0:cy1] = sub
            out.canvas_bright[cy0:cy1] = (luma(sub) >= background_luma if ore is None else
                                          ore.mask_at(sub, np.arange(cy0, cy1) * scale, np.arange(cw) * scale))
            out.canvas_tile[cy0:cy1] = r * cols + col_of_cx[None, :]
        # bright-pixel counts of every owned rectangle in this band row, in one vectorised pass
        bright = luma(band[oy0:oy1]) >= background_luma if ore is None else ore.ore_mask(band[oy0:oy1], y0 + oy0)
        col_bright = bright.sum(0, dtype=np.int64)
        row0 = r * cols
        out.bright_px[row0 : row0 + cols] = np.add.reduceat(col_bright, xs.own_start)
        out.owned_px[row0 : row0 + cols] = (oy1 - oy0) * (xs.own_end - xs.own_start)
        for col in range(cols):
            i = row0 + col
            x0 = int(xs.starts[col])
            if out.bright_px[i] >= min_ore_share * out.owned_px[i] and out.bright_px[i] > 0:
                pending.append(band_t[:, :, x0 : x0 + tile_eff])
                pending_idx.append(i)
                if len(pending) == predictor.batch_size:
                    flush()
        bar.update(cols)
    if pending:
        flush()
    bar.close()

    classified = ~np.isnan(out.probs[:, 0])
    out.label_index[classified] = out.probs[classified].argmax(1)
    out.status[classified] = STATUS_MINERAL
    if threshold is not None:
        conf = np.ones(n, np.float32)
        conf[classified] = out.probs[classified].max(1)
        out.status[classified & (conf < threshold)] = STATUS_UNKNOWN
    ood_threshold = tile_ood_threshold(predictor)
    if ood_threshold is not None:
        judged = classified & (out.bright_px >= OOD_MIN_ORE_SHARE * out.owned_px)
        out.status[judged & (np.nan_to_num(out.ood_scores, nan=-np.inf) > ood_threshold)] = STATUS_UNKNOWN
    out.timing = {"total_s": time.perf_counter() - t_start, "model_s": t_model, "read_s": t_read,
                  "tiles": n, "tiles_classified": int(classified.sum())}
    out.abundance = modal_abundance(out)
    return out


def modal_abundance(m: SectionMap) -> dict[str, Any]:
    """Area % per phase over the whole image (exact pixel counts) and over ore pixels only."""
    total = m.width * m.height
    if int(m.owned_px.sum()) != total:
        raise AssertionError(f"tile ownership covers {int(m.owned_px.sum())} px, image has {total}")
    rows: list[dict[str, Any]] = []
    mineral = m.status == STATUS_MINERAL
    dark = int((m.owned_px - np.where(m.status == STATUS_BACKGROUND, 0, m.bright_px)).sum())
    for k, name in enumerate(m.labels):
        sel = mineral & (m.label_index == k)
        rows.append({"phase": name, "kind": "mineral", "pixels": int(m.bright_px[sel].sum()), "tiles": int(sel.sum())})
    unk = m.status == STATUS_UNKNOWN
    rows.append({"phase": UNKNOWN, "kind": "unknown", "pixels": int(m.bright_px[unk].sum()), "tiles": int(unk.sum())})
    rows.append({"phase": BACKGROUND, "kind": "gangue/background", "pixels": dark,
                 "tiles": int((m.status == STATUS_BACKGROUND).sum())})
    ore = total - dark
    for row in rows:
        row["area_percent"] = 100.0 * row["pixels"] / total
        row["ore_percent"] = (100.0 * row["pixels"] / ore if ore else 0.0) if row["kind"] != "gangue/background" else None
    assert sum(r["pixels"] for r in rows) == total
    return {"total_pixels": total, "ore_pixels": ore, "tiles_total": len(m.status), "phases": rows}
