"""Fitting the open-set score on a data set's splits (``hf-minerals calibrate`` calls it); kept apart from the
scorer so the Space, which only scores, never imports the data-set stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from .colour import STATS, colour_stats
from .scorer import DEFAULT_METHOD, KNN_K, MIN_CORRELATION, OOD_FILE, OODScorer, input_check

if TYPE_CHECKING:
    from ..predict import Predictor


def split_features(predictor: Predictor, split: Any, progress: bool = True,
                   transform: Callable[[list[Image.Image], int], list[Any]] | None = None) -> SplitFeatures:
    """Pooled features, colour statistics, input-check rejections and model label ids of a split with
    ``image``/``label`` columns; ``transform(images, start)`` replaces each batch first (e.g. tile crops)."""
    from tqdm.auto import tqdm

    from ..data.loading import model_ids

    to_model = model_ids(split.features["label"].names, predictor.labels)
    feats, colours, rejected, ys = [], [], [], []
    cfg = predictor.data_config
    for start in tqdm(range(0, len(split), predictor.batch_size), desc="open-set features", disable=not progress):
        rows = split[start : start + predictor.batch_size]
        images = [im.convert("RGB") for im in rows["image"]]
        pv = predictor.preprocess(transform(images, start) if transform else images)
        feats.append(predictor.forward(pv)[1])
        colours.append(colour_stats(pv, cfg.mean, cfg.std))
        rejected.append(input_check(pv, cfg.mean, cfg.std))
        ys.append(to_model[np.asarray(rows["label"])])
    return SplitFeatures(torch.cat(feats), np.concatenate(colours), np.concatenate(rejected), np.concatenate(ys))


@dataclass
class SplitFeatures:
    features: torch.Tensor
    colour: np.ndarray
    rejected: np.ndarray
    labels: np.ndarray


#: Tile crops of the threshold split (``tile_crops``): side as a share of the image's, and crops per image.
TILE_SIDES = (0.5, 0.75)


def tile_crops(images: list[Image.Image], start: int, seed: int = 0) -> list[np.ndarray]:
    """One random square crop per image (side ``TILE_SIDES``, alternating), as a section tile sees a scene:
    partial grains, mixed phases, more gangue. Seeded by the image's position: the same crops every run."""
    out = []
    for j, im in enumerate(images):
        a = np.asarray(im)
        rng = np.random.default_rng([seed, start + j])
        side = max(16, int(round(min(a.shape[:2]) * TILE_SIDES[(start + j) % len(TILE_SIDES)])))
        y0, x0 = (int(rng.integers(0, a.shape[k] - side + 1)) for k in (0, 1))
        out.append(np.ascontiguousarray(a[y0 : y0 + side, x0 : x0 + side]))
    return out


METHOD_TEXT = {
    "knn": f"knn: cosine distance of the L2-normalised pooled features (classifier input) to the k-th nearest "
           f"(k = {KNN_K}) training feature",
    "mahalanobis": "mahalanobis: distance of the pooled features (classifier input) to the nearest class mean, "
                   "class-conditional Gaussians with one shared covariance",
    "colour": "colour: Mahalanobis distance of photo-relative colour statistics of the input (" + ", ".join(STATS)
              + ") to the nearest class, one Gaussian per class",
}


def method_text(method: str) -> str:
    parts = method.split("+")
    if len(parts) == 1:
        return METHOD_TEXT[method]
    return (f"{method}: sum of the distances, each divided by its median on the threshold split ("
            + "; ".join(METHOD_TEXT[p] for p in parts) + ")")


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
    fit = split_features(predictor, fit_data, progress)
    val = split_features(predictor, threshold_data, progress)
    scorer = OODScorer.fit(fit.features, fit.labels, len(predictor.labels), method, scale_features=val.features,
                           colour=fit.colour, scale_colour=val.colour)
    vd = scorer.distance(val.features, val.colour)
    threshold = float(np.quantile(vd, keep, method="higher"))
    tiles = split_features(predictor, threshold_data, progress, transform=tile_crops)
    td = np.where(tiles.rejected, np.inf, scorer.distance(tiles.features, tiles.colour))
    from ..mapping.tiler import DEFAULT_MIN_ORE_SHARE  # the mapper scores only tiles this bright; so do we

    ore = tile_ore_share(predictor, threshold_data) >= DEFAULT_MIN_ORE_SHARE
    tile_threshold = max(threshold, float(np.quantile(td[ore], keep, method="higher"))) if ore.any() else threshold
    record = {
        "method": f"{method_text(method)}; input checks: images with every channel std < {scorer.flat_std} grey "
                  f"levels (featureless) or lag-1 spatial autocorrelation < {MIN_CORRELATION} (noise) score inf",
        "method_name": method,
        "file": OOD_FILE,
        "threshold": threshold,
        "tile_threshold": tile_threshold,
        "keep_share_target": keep,
        "distance_fitted_on": {"split": fit_split, "n": int(len(fit.labels)), "feature_dim": int(fit.features.shape[1])},
        "threshold_fitted_on": {"split": threshold_split, "n": int(len(vd))},
        "tile_threshold_fitted_on": {
            "split": threshold_split, "n": int(ore.sum()),
            "crops": f"one seeded random square crop per image, side {' / '.join(map(str, TILE_SIDES))} of the image's "
                     f"(alternating), kept if >= {DEFAULT_MIN_ORE_SHARE:.0%} of its pixels are brighter than the mapper's "
                     "background luma; never below the image threshold"},
        "scales": scorer.scales,
        "flat_std": scorer.flat_std,
        "min_correlation": MIN_CORRELATION,
        "threshold_split_share_flagged": float((val.rejected | (vd > threshold)).mean()),
        "fit_split_share_rejected_by_input_checks": float(fit.rejected.mean()),
    }
    return scorer, record


def tile_ore_share(predictor: Predictor, split: Any) -> np.ndarray:
    """Share of each tile crop's pixels at or above the mapper's default background luma."""
    from ..mapping.tiler import DEFAULT_BACKGROUND_LUMA, luma

    shares = []
    for start in range(0, len(split), predictor.batch_size):
        images = [im.convert("RGB") for im in split[start : start + predictor.batch_size]["image"]]
        shares += [float((luma(c) >= DEFAULT_BACKGROUND_LUMA).mean()) for c in tile_crops(images, start)]
    return np.asarray(shares)
