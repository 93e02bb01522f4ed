"""Expected calibration error (ECE), an ``evaluate`` metric module shipped with hf-minerals.

How far the model's confidence (its top probability) is from how often it is right.
Confidences are put in ``n_bins`` equal-width bins over [0, 1] (bin b holds (b/n, (b+1)/n]; a confidence
of exactly 0 goes to the first bin), and

    ECE = sum_b (|B_b| / N) * |accuracy(B_b) - mean confidence(B_b)|

(Guo et al. 2017, "On calibration of modern neural networks"). MCE is the largest bin gap. The per-bin
counts, accuracies and confidences are returned too: they are the reliability diagram.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Expected calibration error: the count-weighted mean gap between confidence and accuracy over confidence bins."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of float): per-image class probabilities (rows sum to 1).
    references (list of int): true class indices.
    n_bins (int): number of equal-width confidence bins over [0, 1] (default 15).
Returns:
    expected_calibration_error (float): in [0, 1]; 0 is perfectly calibrated.
    maximum_calibration_error (float): the largest |accuracy - confidence| over non-empty bins.
    bin_edges (list of float): n_bins + 1 edges.
    bin_counts (list of int), bin_accuracy, bin_confidence (list of float or None for empty bins).
"""
_CITATION = """@inproceedings{guo2017calibration, title={On Calibration of Modern Neural Networks},
author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.}, booktitle={ICML}, year={2017}}"""


def calibration_bins(probs: np.ndarray, references: np.ndarray, n_bins: int = 15) -> dict:
    """ECE, MCE and the per-bin statistics of (N, C) probabilities against (N,) true labels."""
    if probs.ndim != 2:
        raise ValueError(f"predictions must be (N, C) probabilities, got shape {probs.shape}")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == references).astype(np.float64)
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    n = max(len(conf), 1)
    nonempty = counts > 0
    acc = np.divide(acc_sum, counts, out=np.zeros(n_bins), where=nonempty)
    mean_conf = np.divide(conf_sum, counts, out=np.zeros(n_bins), where=nonempty)
    gaps = np.abs(acc - mean_conf)
    return {
        "expected_calibration_error": float(np.sum(counts / n * gaps)),
        "maximum_calibration_error": float(gaps[nonempty].max()) if nonempty.any() else 0.0,
        "bin_edges": [float(e) for e in np.linspace(0.0, 1.0, n_bins + 1)],
        "bin_counts": [int(c) for c in counts],
        "bin_accuracy": [float(a) if k else None for a, k in zip(acc, nonempty)],
        "bin_confidence": [float(c) if k else None for c, k in zip(mean_conf, nonempty)],
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExpectedCalibrationError(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
            reference_urls=["https://arxiv.org/abs/1706.04599"],
        )

    def _compute(self, predictions, references, n_bins=15):
        return calibration_bins(np.asarray(predictions, dtype=np.float64), np.asarray(references), int(n_bins))
