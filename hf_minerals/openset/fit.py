"""Fitting the open-set score on a data set's splits (``hf-minerals calibrate`` calls it); kept apart from the
scorer so the Space, which only scores, never imports the data-set stack."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .scorer import DEFAULT_METHOD, KNN_K, MIN_CORRELATION, OOD_FILE, OODScorer, input_check

if TYPE_CHECKING:
    from ..predict import Predictor


def split_features(predictor: Predictor, split: Any, progress: bool = True) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(features, rejected by the input checks, model label ids) of a split with ``image``/``label`` columns."""
    from tqdm.auto import tqdm

    from ..data.loading import model_ids

    to_model = model_ids(split.features["label"].names, predictor.labels)
    feats, rejected, ys = [], [], []
    cfg = predictor.data_config
    for start in tqdm(range(0, len(split), predictor.batch_size), desc="open-set features", disable=not progress):
        rows = split[start : start + predictor.batch_size]
        pv = predictor.preprocess([im.convert("RGB") for im in rows["image"]])
        feats.append(predictor.forward(pv)[1])
        rejected.append(input_check(pv, cfg.mean, cfg.std))
        ys.append(to_model[np.asarray(rows["label"])])
    return torch.cat(feats), np.concatenate(rejected), np.concatenate(ys)


METHOD_TEXT = {
    "knn": f"knn: cosine distance of the L2-normalised pooled features (classifier input) to the k-th nearest "
           f"(k = {KNN_K}) training feature",
    "mahalanobis": "mahalanobis: distance of the pooled features (classifier input) to the nearest class mean, "
                   "class-conditional Gaussians with one shared covariance",
}
METHOD_TEXT["knn+mahalanobis"] = ("knn+mahalanobis: sum of the two distances, each divided by its median on the "
                                  "threshold split (" + METHOD_TEXT["knn"] + "; " + METHOD_TEXT["mahalanobis"] + ")")


def fit_openset(predictor: Predictor, dataset: Any, fit_split: str = "train", threshold_split: str = "validation",
                keep: float = 0.95, progress: bool = True, method: str = DEFAULT_METHOD) -> tuple[OODScorer, dict[str, Any]]:
    """Fit the distance on ``fit_split``, the threshold on ``threshold_split`` (keeps ``keep`` of its images).

    ``dataset``: a DatasetDict, its ``save_to_disk`` folder or a Hub id (``data.loading.load_split``).
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    from ..data.loading import load_split

    try:
        fit_data, _ = load_split(dataset, fit_split)
        threshold_data, _ = load_split(dataset, threshold_split)
    except KeyError as exc:
        raise ValueError(f"the open-set score is fitted on '{fit_split}' and thresholded on '{threshold_split}': "
                         f"{exc.args[0]} (choose another with --ood_fit_split, or --no_ood)") from None
    feats, rejected, ys = split_features(predictor, fit_data, progress)
    vfeats, vrejected, _ = split_features(predictor, threshold_data, progress)
    scorer = OODScorer.fit(feats, ys, len(predictor.labels), method, scale_features=vfeats)
    vd = scorer.distance(vfeats)
    threshold = float(np.quantile(vd, keep, method="higher"))
    record = {
        "method": f"{METHOD_TEXT[method]}; input checks: images with every channel std < {scorer.flat_std} grey "
                  f"levels (featureless) or lag-1 spatial autocorrelation < {MIN_CORRELATION} (noise) score inf",
        "method_name": method,
        "file": OOD_FILE,
        "threshold": threshold,
        "keep_share_target": keep,
        "distance_fitted_on": {"split": fit_split, "n": int(len(ys)), "feature_dim": int(feats.shape[1])},
        "threshold_fitted_on": {"split": threshold_split, "n": int(len(vd))},
        "scales": scorer.scales,
        "flat_std": scorer.flat_std,
        "min_correlation": MIN_CORRELATION,
        "threshold_split_share_flagged": float((vrejected | (vd > threshold)).mean()),
        "fit_split_share_rejected_by_input_checks": float(rejected.mean()),
    }
    return scorer, record
