"""Metrics through ``evaluate``, offline: the modules ship in this package and are loaded by path.

``evaluate.load("accuracy")`` fetches its script from the Hub; ``evaluate.load(str(metric_path("accuracy")))``
reads ``hf_minerals/metrics/accuracy/accuracy.py`` and never touches the network. One folder per metric:
``accuracy``, ``precision``, ``recall``, ``f1``, ``confusion_matrix``, ``ece``.

``compute_metrics`` is the Trainer hook (accuracy + macro F1); ``compute_all`` is the full report.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "confusion_matrix", "ece")
#: Default number of equal-width confidence bins of the ECE and the reliability diagram.
ECE_BINS = 15


def metric_path(name: str) -> Path:
    """The folder of a shipped metric module, for ``evaluate.load(str(metric_path(name)))``."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric '{name}'; hf-minerals ships: {', '.join(METRIC_NAMES)}")
    return METRICS_DIR / name


@cache
def load_metric(name: str) -> Any:
    """``evaluate.load`` of a shipped metric by local path (kept in memory, cached per process)."""
    import evaluate

    return evaluate.load(str(metric_path(name)), keep_in_memory=True)


def _logits_and_labels(eval_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    preds = eval_pred.predictions if hasattr(eval_pred, "predictions") else eval_pred[0]
    labels = eval_pred.label_ids if hasattr(eval_pred, "label_ids") else eval_pred[1]
    if isinstance(preds, (tuple, list)):  # models that return extra outputs (hidden states...)
        preds = preds[0]
    return np.asarray(preds), np.asarray(labels)


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """Trainer hook: ``accuracy`` and ``macro_f1`` from an ``EvalPrediction`` (logits, label ids).

    The Trainer logs them as ``eval_accuracy`` / ``eval_macro_f1`` (use ``metric_for_best_model: macro_f1``).
    """
    logits, labels = _logits_and_labels(eval_pred)
    preds = logits.argmax(axis=-1)
    labels_list = list(range(logits.shape[-1]))
    return {
        "accuracy": load_metric("accuracy").compute(predictions=preds, references=labels)["accuracy"],
        "macro_f1": load_metric("f1").compute(predictions=preds, references=labels, labels=labels_list, average="macro")[
            "f1"
        ],
    }


def compute_all(
    labels: Sequence[int] | np.ndarray, probs: np.ndarray, class_names: Sequence[str], n_bins: int = ECE_BINS
) -> dict[str, Any]:
    """Every metric of the evaluation report for (N,) true label ids and (N, C) probabilities.

    Macro averages are over all ``class_names`` (a class absent from ``labels`` with no predictions
    scores 0, which is why the per-class ``support`` is reported next to it).
    """
    probs = np.asarray(probs, dtype=np.float64)
    refs = np.asarray(labels, dtype=np.int64)
    names = list(class_names)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"probs must be (N, {len(names)}) for classes {names}, got shape {probs.shape}")
    if len(refs) != len(probs):
        raise ValueError(f"{len(refs)} labels but {len(probs)} probability rows")
    if len(refs) == 0:
        raise ValueError("no samples to evaluate")
    if refs.min() < 0 or refs.max() >= len(names):
        raise ValueError(f"label ids must be in [0, {len(names) - 1}], got {refs.min()}..{refs.max()}")
    preds = probs.argmax(axis=1)
    ids = list(range(len(names)))
    kw = {"predictions": preds, "references": refs, "labels": ids}

    def per(name: str, average: str | None) -> Any:
        return load_metric(name).compute(**kw, average=average)[name]

    per_p, per_r, per_f = per("precision", None), per("recall", None), per("f1", None)
    support = np.bincount(refs, minlength=len(names))
    ece = load_metric("ece").compute(predictions=probs, references=refs, n_bins=n_bins)
    return {
        "n": int(len(refs)),
        "accuracy": load_metric("accuracy").compute(predictions=preds, references=refs)["accuracy"],
        "macro_precision": per("precision", "macro"),
        "macro_recall": per("recall", "macro"),
        "macro_f1": per("f1", "macro"),
        "weighted_f1": per("f1", "weighted"),
        "per_class": {
            name: {"precision": per_p[i], "recall": per_r[i], "f1": per_f[i], "support": int(support[i])}
            for i, name in enumerate(names)
        },
        "class_names": names,
        "confusion_matrix": load_metric("confusion_matrix").compute(**kw)["confusion_matrix"],
        "ece": ece["expected_calibration_error"],
        "mce": ece["maximum_calibration_error"],
        "calibration_bins": {k: ece[k] for k in ("bin_edges", "bin_counts", "bin_accuracy", "bin_confidence")},
        "mean_confidence": float(probs.max(axis=1).mean()),
    }
