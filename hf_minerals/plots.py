"""Figures people would rather look at than read: confusion matrix, reliability diagram, training curves,
model comparison. Matplotlib with the Agg backend (no display needed); every function writes a PNG and
returns its path. ``synthetic=True`` puts "synthetic data" in the title, so a figure cut out of a report
can never pass for a result on real photomicrographs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SYNTHETIC_TAG = "synthetic data"


def _title(title: str, synthetic: bool) -> str:
    return f"{title} ({SYNTHETIC_TAG})" if synthetic else title


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    *,
    title: str = "Confusion matrix",
    synthetic: bool = False,
) -> Path:
    """Counts and row-normalised rates (recall per true class) in each cell; colour is the rate."""
    cm = np.asarray(matrix, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    rates = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    n = len(class_names)
    side = max(4.0, 0.9 * n + 2.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class (row-normalised)")
    ax.set_xticks(range(n), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            color = "white" if rates[i, j] > 0.6 else "black"
            ax.text(j, i, f"{cm[i, j]}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=8, color=color)
    ax.set_title(_title(f"{title} (n={int(cm.sum())})", synthetic))
    return _save(fig, path)


def plot_reliability(
    bins: Mapping[str, Sequence[Any]],
    path: str | Path,
    *,
    ece: float | None = None,
    title: str = "Reliability diagram",
    synthetic: bool = False,
) -> Path:
    """Accuracy vs confidence per bin (bars) against the diagonal; the lower panel shows bin counts.

    ``bins`` is the ``calibration_bins`` dict of ``compute_all`` (edges, counts, accuracy, confidence).
    """
    edges = np.asarray(bins["bin_edges"], dtype=float)
    counts = np.asarray(bins["bin_counts"], dtype=float)
    acc = np.array([np.nan if a is None else a for a in bins["bin_accuracy"]], dtype=float)
    conf = np.array([np.nan if c is None else c for c in bins["bin_confidence"]], dtype=float)
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ok = ~np.isnan(acc)
    ax.bar(centers[ok], acc[ok], width=width[ok], edgecolor="black", color="tab:blue", label="accuracy")
    gap_lo, gap_hi = np.minimum(acc, conf)[ok], np.abs(acc - conf)[ok]
    ax.bar(centers[ok], gap_hi, bottom=gap_lo, width=width[ok], color="tab:red", alpha=0.3, label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    suffix = f" - ECE {ece:.3f}" if ece is not None else ""
    ax.set_title(_title(title + suffix, synthetic))
    axc.bar(centers, counts, width=width, color="gray", edgecolor="black")
    axc.set_xlabel("confidence (top probability)")
    axc.set_ylabel("images")
    return _save(fig, path)


def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str = "Training curves",
    synthetic: bool = False,
) -> Path:
    """Loss (train and eval) and accuracy / macro F1 (eval) against epoch, from ``trainer.state.log_history``."""

    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(float(h["epoch"]), float(h[key])) for h in log_history if key in h and "epoch" in h]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("loss", "train loss", "-"), ("eval_loss", "eval loss", "o-")):
        x, y = series(key)
        if x:
            ax_loss.plot(x, y, style, label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    plotted = False
    for key, label in (("train_accuracy", "train accuracy"), ("eval_accuracy", "eval accuracy"), ("eval_macro_f1", "eval macro F1")):
        x, y = series(key)
        if x:
            ax_acc.plot(x, y, "o-", label=label)
            plotted = True
    if not plotted:
        ax_acc.text(0.5, 0.5, "no evaluation logged", ha="center", va="center", transform=ax_acc.transAxes)
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("score")
    ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(_title(title, synthetic))
    return _save(fig, path)


def plot_comparison(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    metrics: Sequence[str] = ("accuracy", "macro_f1"),
    title: str = "Model comparison",
    synthetic: bool = False,
    note: str | None = None,
) -> Path:
    """Grouped bars: one group per run (``row['name']``), one bar per metric, values written on the bars."""
    names = [str(r["name"]) for r in rows]
    x = np.arange(len(names))
    width = 0.8 / max(len(metrics), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.5))
    for k, metric in enumerate(metrics):
        vals = [float(r.get(metric) or 0.0) for r in rows]
        bars = ax.bar(x + (k - (len(metrics) - 1) / 2) * width, vals, width, label=metric)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, labels=names, rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score on the test split")
    ax.legend(fontsize=8)
    ax.set_title(_title(title, synthetic) + (f"\n{note}" if note else ""), fontsize=11)
    return _save(fig, path)
