"""Confusion matrix, an ``evaluate`` metric module shipped with hf-minerals and loaded by path.

Row i, column j counts images of true class i predicted as class j (scikit-learn's convention).
"""

import datasets
import evaluate
from sklearn.metrics import confusion_matrix

_DESCRIPTION = "Confusion matrix: counts of (true class, predicted class) pairs; rows are true classes."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
    labels (list of int): class order of rows and columns (pass all classes so absent ones keep a row).
    sample_weight (list of float): per-sample weights.
    normalize ('true', 'pred', 'all' or None): normalise over rows, columns or all; None (default) gives counts.
Returns:
    confusion_matrix (list of list): C x C.
"""
_CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ConfusionMatrix(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"],
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, normalize=None):
        cm = confusion_matrix(references, predictions, labels=labels, sample_weight=sample_weight, normalize=normalize)
        return {"confusion_matrix": cm.tolist()}
