"""How sure a score is: 95 % bootstrap intervals resampled by group, and paired differences between models.

Crops of one photomicrograph (or section) are not independent: resampling single images would make the
interval too narrow. Every function here resamples whole *groups* (the data set's ``group`` column; one
image per group when there is none) with replacement, recomputing accuracy and macro-F1 each time.
Two models compared on the same test set are resampled *together* (paired bootstrap), so the noise of
the test set itself cancels and only the difference between the models is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def accuracy(refs: np.ndarray, preds: np.ndarray, weights: np.ndarray | None = None) -> float:
    """(Weighted) share of correct answers; a weight is how often a resample drew the image."""
    if not len(refs):
        return float("nan")
    return float(np.average(refs == preds, weights=weights))


def macro_f1(refs: np.ndarray, preds: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> float:
    """Macro-F1 over the classes present in ``refs`` or ``preds`` (as ``sklearn``'s ``f1_score(average='macro')``)."""
    cm = np.bincount(refs * n_classes + preds, weights=weights, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    return float(f1[present].mean()) if present.any() else float("nan")


def _group_ids(groups: Sequence[Any] | None, n: int) -> np.ndarray:
    """Group number of each row (each row its own group when ``groups`` is None)."""
    if groups is None:
        return np.arange(n)
    return np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1].ravel()


def _resample_weights(groups: Sequence[Any] | None, n: int, n_boot: int, seed: int):
    """Per draw, how many times each row is in the resample: groups drawn with replacement, rows follow."""
    ids = _group_ids(groups, n)
    n_groups = int(ids.max()) + 1 if n else 0
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        yield counts[ids].astype(float)


def _interval(values: np.ndarray, level: float) -> list[float]:
    alpha = (1 - level) / 2
    return [float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))]


def bootstrap_ci(
    refs: Sequence[int], preds: Sequence[int], n_classes: int, groups: Sequence[Any] | None = None,
    n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
) -> dict[str, Any]:
    """Percentile intervals of accuracy and macro-F1, resampling groups with replacement."""
    refs, preds = np.asarray(refs, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    acc, f1 = [], []
    for w in _resample_weights(groups, len(refs), n_boot, seed):
        acc.append(accuracy(refs, preds, w))
        f1.append(macro_f1(refs, preds, n_classes, w))
    return {
        "accuracy": _interval(np.array(acc), level),
        "macro_f1": _interval(np.array(f1), level),
        "level": level,
        "n_boot": n_boot,
        "resampled_by": "group" if groups is not None else "image",
        "n_groups": int(len(np.unique(_group_ids(groups, len(refs))))),
    }


def paired_difference(
    refs: Sequence[int], preds_a: Sequence[int], preds_b: Sequence[int], n_classes: int,
    groups: Sequence[Any] | None = None, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
) -> dict[str, Any]:
    """A minus B on the same test images: the difference and its paired-bootstrap interval, per metric.

    ``beyond_noise`` is True when the interval excludes 0: the difference is larger than what
    resampling the test set produces by itself.
    """
    refs = np.asarray(refs, dtype=np.int64)
    a, b = np.asarray(preds_a, dtype=np.int64), np.asarray(preds_b, dtype=np.int64)
    if not (len(refs) == len(a) == len(b)):
        raise ValueError(f"paired comparison needs the same test images: {len(refs)}, {len(a)}, {len(b)} predictions")
    fns = {"accuracy": lambda p, w: accuracy(refs, p, w), "macro_f1": lambda p, w: macro_f1(refs, p, n_classes, w)}
    draws: dict[str, list[float]] = {k: [] for k in fns}
    for w in _resample_weights(groups, len(refs), n_boot, seed):
        for k, fn in fns.items():
            draws[k].append(fn(a, w) - fn(b, w))
    out: dict[str, Any] = {"level": level, "n_boot": n_boot, "resampled_by": "group" if groups is not None else "image"}
    for k, fn in fns.items():
        lo, hi = _interval(np.array(draws[k]), level)
        diff = fn(a, None) - fn(b, None)
        out[k] = {"difference": diff, "ci": [lo, hi], "beyond_noise": bool(lo > 0 or hi < 0)}
    return out


def format_ci(value: float, ci: Sequence[float] | None, spec: str = ".3f") -> str:
    """``0.912 [0.871, 0.948]``."""
    if ci is None:
        return format(value, spec)
    return f"{format(value, spec)} [{format(ci[0], spec)}, {format(ci[1], spec)}]"
