"""Accuracy, an ``evaluate`` metric module shipped with hf-minerals and loaded by path (no Hub needed).

    >>> import evaluate
    >>> from hf_minerals.metrics import metric_path
    >>> evaluate.load(str(metric_path("accuracy"))).compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.666...}
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = "Accuracy: the fraction of predictions equal to the reference label, (TP + TN) / N."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices.
    references (list of int): true class indices.
    normalize (bool): fraction (default) or count of correct predictions.
    sample_weight (list of float): per-sample weights, default None.
Returns:
    accuracy (float): in [0, 1] when normalize is True.
"""
_CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in {P}ython}, author={Pedregosa, F. and others},
journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight))}
