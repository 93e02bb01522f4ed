"""Precision, an ``evaluate`` metric module shipped with hf-minerals and loaded by path (no Hub needed).

Unlike the Hub module, ``zero_division`` defaults to 0 (a class never predicted scores 0, without a
warning) and ``labels`` fixes the class list, so per-class arrays have one entry per class even when
a small test split lacks some class.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import precision_score

_DESCRIPTION = "Precision: TP / (TP + FP), the fraction of images predicted as a class that truly are that class."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
    labels (list of int): the classes to score (default: those present); sets the order of per-class values.
    average (str or None): 'macro' (default, unweighted mean over classes), 'micro', 'weighted', 'binary',
        or None for one value per class.
    pos_label (int): the positive class when average='binary'.
    sample_weight (list of float): per-sample weights.
    zero_division (0, 1 or 'warn'): the value for a 0/0 ratio (default 0).
Returns:
    precision (float, or list of float when average is None).
"""
_CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Precision(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_score.html"],
        )

    def _compute(
        self, predictions, references, labels=None, average="macro", pos_label=1, sample_weight=None, zero_division=0
    ):
        score = precision_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        return {"precision": float(score) if np.ndim(score) == 0 else [float(s) for s in score]}
