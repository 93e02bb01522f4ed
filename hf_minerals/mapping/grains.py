"""Grain statistics from a label image: count, size distribution, contacts and locking.

A grain is an 8-connected component of one phase (``scipy.ndimage.label``). Its size is the equivalent
circle diameter, ECD = 2 sqrt(area / pi), in micrometres when the pixel size is known (else px).
Contacts are counted on 4-neighbour pixel pairs of different phases, so the contact matrix is
symmetric and its entries are boundary lengths in px. A grain is *locked in X* when >= 90 % of its
boundary touches mineral X, *free* when >= 90 % touches gangue/background, *attached* otherwise -
the liberation language of process mineralogy (e.g. gold locked in pyrite vs free gold).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

LOCKED_SHARE = 0.9
EIGHT = np.ones((3, 3), bool)


def contact_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase codes (a, b) of every horizontally or vertically adjacent pixel pair with a != b."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    diff = a != b
    return a[diff], b[diff]


def contact_matrix(labels: np.ndarray, n_phases: int) -> np.ndarray:
    """(P, P) symmetric boundary length (px) between phases."""
    a, b = contact_pairs(labels)
    m = np.bincount(a.astype(np.int64) * n_phases + b, minlength=n_phases * n_phases).reshape(n_phases, n_phases)
    return m + m.T


def _grain_boundaries(labels: np.ndarray, comp: np.ndarray, code: int, n: int, n_phases: int) -> np.ndarray:
    """(n + 1, P) boundary px of each grain of ``code`` against each phase (row 0 unused)."""
    out = np.zeros((n + 1) * n_phases, np.int64)
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        for src, dst in ((sl_a, sl_b), (sl_b, sl_a)):
            la, lb = labels[src], labels[dst]
            sel = (la == code) & (lb != code)
            out += np.bincount(comp[src][sel].astype(np.int64) * n_phases + lb[sel], minlength=len(out))
    return out.reshape(n + 1, n_phases)


def size_summary(ecd: np.ndarray) -> dict[str, Any]:
    """Count, mean and D10/D50/D90 of equivalent circle diameters, plus a log2-binned histogram."""
    if len(ecd) == 0:
        return {"count": 0}
    edges = 2.0 ** np.arange(np.floor(np.log2(ecd.min())), np.ceil(np.log2(ecd.max())) + 1.01)
    hist, _ = np.histogram(ecd, bins=edges)
    d10, d50, d90 = np.percentile(ecd, [10, 50, 90])
    return {"count": int(len(ecd)), "ecd_mean": float(ecd.mean()), "ecd_d10": float(d10), "ecd_d50": float(d50),
            "ecd_d90": float(d90), "ecd_max": float(ecd.max()),
            "histogram": {"edges": [round(float(e), 3) for e in edges], "counts": hist.astype(int).tolist()}}


def grain_statistics(labels: np.ndarray, phases: list[str], um_per_px: float | None = None,
                     min_px: int = 4, background: int = 0) -> dict[str, Any]:
    """Per phase (except ``background``): grain count, ECD distribution and locking; the contact matrix.

    Components under ``min_px`` pixels (noise, edge pixels) are counted separately, not as grains."""
    n_phases = len(phases)
    scale = um_per_px or 1.0
    unit = "um" if um_per_px else "px"
    per_phase: dict[str, Any] = {}
    for code, name in enumerate(phases):
        if code == background:
            continue
        comp, n = ndimage.label(labels == code, structure=EIGHT)
        if n == 0:
            per_phase[name] = {"count": 0, "below_min_px": 0}
            continue
        area = np.bincount(comp.ravel(), minlength=n + 1)[1:]
        keep = area >= min_px
        ecd = 2.0 * np.sqrt(area[keep] / np.pi) * scale
        bounds = _grain_boundaries(labels, comp, code, n, n_phases)[1:][keep]
        share = bounds / np.maximum(bounds.sum(1, keepdims=True), 1)
        locked: dict[str, int] = {}
        free = attached = 0
        for row in share:
            top = int(row.argmax())
            if row[top] >= LOCKED_SHARE and top == background:
                free += 1
            elif row[top] >= LOCKED_SHARE:
                locked[phases[top]] = locked.get(phases[top], 0) + 1
            else:
                attached += 1
        per_phase[name] = {**size_summary(ecd), "below_min_px": int((~keep).sum()), "area_px": int(area[keep].sum()),
                           "free": free, "attached": attached, "locked_in": dict(sorted(locked.items()))}
    return {"unit": unit, "um_per_px": um_per_px, "min_px": min_px, "connectivity": 8,
            "locked_share": LOCKED_SHARE, "phases": per_phase,
            "contact_matrix": {"phases": phases, "boundary_px": contact_matrix(labels, n_phases).tolist()}}
