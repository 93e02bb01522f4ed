"""Out-of-distribution score: "is this like any mineral the model was trained on?".

Temperature scaling + a confidence threshold cannot say *not a known mineral*: a small fine-tuned
model is as sure about a black frame or an unseen mineral as about its own classes. Two signals can:

1. **A distance to the known minerals** (fitted on known minerals only; one part or a sum of parts, each
   divided by its median on known validation images): ``colour`` (default) — photo-relative colour
   statistics of the input (``colour.py``: brightness relative to the photo's brightest pixels, the ore's
   tint relative to the gangue), one Gaussian per class; ``knn`` — cosine distance of the L2-normalised
   pooled features (input of ``model.classifier``) to the k-th nearest training feature (k = 10; Sun et
   al. 2022); ``mahalanobis`` — distance of the pooled features to the nearest class mean under
   class-conditional Gaussians with one shared covariance (Lee et al. 2018). The default was chosen on
   SELECTION negatives only, disjoint from the benchmark's test kinds (``openset/negatives.py``,
   docs/benchmarks.md). No negative example is used in fitting, so every kind of outlier is unseen.
   ``exposure`` — outlier exposure (Hendrycks et al. 2019): a linear known-vs-negative classifier on the
   standardised [pooled features, colour statistics], trained on the known training images against
   SYNTHETIC negatives of ``negatives.py`` (random minerals: a known mineral's scene with a random reflectance
   spectrum; non-micrograph families; never a proxy or a test kind); its logit is the distance. A standalone
   method, never summed with the others.
2. **Input checks** (cheap, documented, fixed — not fitted): an image whose every colour channel
   varies by less than ``FLAT_STD`` grey levels (0-255) after preprocessing holds no texture or colour
   variation to classify (a blank field, a lens cap, a uniform colour); an image whose neighbouring
   pixels are nearly uncorrelated (lag-1 autocorrelation < ``MIN_CORRELATION``) is noise, not an optical
   image (a microscope's blur makes neighbours alike: the SYNTHETIC training scenes are >= 0.88, >= 0.82
   under the low-magnification shift). Either scores ``inf``.

The threshold on the distance is chosen on the *validation* split so ``keep`` (default 95 %) of the
known validation images are accepted; the mapper's tile threshold likewise on section-like tiles made from
them (``fit.tile_crops``). The fitted parts go into ``openset.safetensors``
in the model folder, the threshold and what it was fitted on into ``calibration.json`` (key ``"ood"``); the model
itself is untouched, so ``pipeline("image-classification")`` still loads it (without this score).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .colour import ColourGaussians, colour_stats

OOD_FILE = "openset.safetensors"
FORMAT = "2"  # layout of OOD_FILE: tensors "<part>.<name>", metadata method/format/scales/k/flat_std
#: Formats this version reads: "1" (knn / mahalanobis only, same layout) stays readable.
READS_FORMATS = ("1", "2")
#: Every non-empty combination of the parts, in this order (a method name joins its parts with "+").
METHODS = ("knn", "mahalanobis", "colour", "knn+mahalanobis", "knn+colour", "mahalanobis+colour",
           "knn+mahalanobis+colour", "exposure")
#: Methods fitted on known images only (the selection protocol compares these on held-out negatives);
#: ``exposure`` trains on the selection negatives themselves.
KNOWN_ONLY_METHODS = METHODS[:-1]
#: Inverse L2 strength of ``exposure``'s logistic regression, from a development run on the selection proxies
#: (C = 0.01 / 0.1 / 1: held-out proxy AUROC 0.800 / 0.805 / 0.807, offline-recipe model).
EXPOSURE_C = 1.0
#: Chosen on SELECTION negatives only (docs/benchmarks.md, "Open set"): the best mean AUROC over proxy
#: unseen minerals, selection non-micrographs, transformed validation images and known classes left out.
DEFAULT_METHOD = "colour"
KNN_K = 10
#: At most this many training features are kept for ``knn`` (an even, seeded subsample beyond it).
MAX_BANK = 20_000
#: Largest per-channel standard deviation (grey levels, 0-255, after preprocessing) of a featureless image.
#: The SYNTHETIC training scenes are >= ~10; a real photomicrograph has grain boundaries, scratches and
#: camera noise well above 1.5.
FLAT_STD = 1.5
#: Smallest lag-1 spatial autocorrelation (model input, variance-weighted over channels) of an optical image.
MIN_CORRELATION = 0.5
#: Ridge added to the shared covariance, relative to its mean variance: keeps it invertible when the
#: training set is smaller than the feature dimension, small enough to keep the low-variance
#: directions (where outliers show) informative.
RIDGE = 1e-3


def feature_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The classifier head, whose input is the pooled feature vector (Swin, ViT, ResNet, MobileNetV2...)."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Module):
        raise ValueError(f"{type(model).__name__} has no `classifier` head: the open-set score needs its input features")
    return head


@contextmanager
def capture_features(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the classifier head's input (flattened, float32, CPU) for every forward pass in the block."""
    store: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, args: tuple) -> None:
        store.append(args[0].detach().flatten(1).float().cpu())

    handle = feature_layer(model).register_forward_pre_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def channel_spread(pixel_values: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Largest per-channel standard deviation of each image in grey levels (0-255), from model inputs."""
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    x = pixel_values.float().cpu() * s  # the mean shifts every pixel alike: it does not change the spread
    return x.flatten(2).std(dim=2).amax(dim=1).numpy()


def spatial_correlation(pixel_values: torch.Tensor) -> np.ndarray:
    """Lag-1 autocorrelation of each image (horizontal and vertical neighbours, channels weighted by variance)."""
    x = pixel_values.float().cpu()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    num = (x[..., :, 1:] * x[..., :, :-1]).sum((2, 3)) + (x[..., 1:, :] * x[..., :-1, :]).sum((2, 3))
    den = (x[..., :, 1:] ** 2).sum((2, 3)) + (x[..., 1:, :] ** 2).sum((2, 3))
    var = x.var(dim=(2, 3))
    r = num / den.clamp_min(1e-12)
    return ((r * var).sum(1) / var.sum(1).clamp_min(1e-12)).numpy()


def input_check(pixel_values: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
                flat_std: float = FLAT_STD, min_correlation: float = MIN_CORRELATION) -> np.ndarray:
    """True for images the input checks reject: featureless (flat) or noise-like (no spatial correlation)."""
    flat = channel_spread(pixel_values, mean, std) < flat_std
    return flat | (~flat & (spatial_correlation(pixel_values) < min_correlation))


@dataclass
class FeatureGaussians:
    """Class means + shared precision of pooled features; ``distance`` is to the nearest class mean."""

    means: torch.Tensor  # (C, D) float64
    precision: torch.Tensor  # (D, D) float64

    @classmethod
    def fit(cls, features: torch.Tensor, labels: np.ndarray | torch.Tensor, n_classes: int) -> FeatureGaussians:
        x = features.double()
        y = torch.as_tensor(np.asarray(labels)).long()
        if len(x) < 2:
            raise ValueError("the open-set score needs at least 2 fitting images")
        present = sorted(set(y.tolist()))  # a class without fitting images has no mean (nothing is near it)
        means = torch.stack([x[y == c].mean(0) for c in present])
        centred = x - means[torch.searchsorted(torch.tensor(present), y)]
        cov = centred.T @ centred / max(len(x) - len(present), 1)
        ridge = RIDGE * float(cov.diagonal().mean().clamp_min(1e-12))
        precision = torch.linalg.inv(cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype))
        return cls(means, (precision + precision.T) / 2)

    def distance(self, features: torch.Tensor) -> np.ndarray:
        x = features.double()
        xp = x @ self.precision
        d2 = (xp * x).sum(1, keepdim=True) - 2 * xp @ self.means.T + ((self.means @ self.precision) * self.means).sum(1)
        return d2.clamp_min(0).min(1).values.sqrt().numpy()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"means": self.means, "precision": self.precision}


@dataclass
class KNNDistance:
    """Cosine distance of L2-normalised features to their k-th nearest training feature."""

    bank: torch.Tensor  # (N, D) float32, rows of unit length
    k: int = KNN_K

    @classmethod
    def fit(cls, features: torch.Tensor, labels: Any = None, n_classes: int = 0, k: int = KNN_K) -> KNNDistance:
        x = torch.nn.functional.normalize(features.float(), dim=1)
        if len(x) > MAX_BANK:
            x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:MAX_BANK]]
        return cls(x.contiguous(), max(1, min(k, len(x))))

    def distance(self, features: torch.Tensor) -> np.ndarray:
        x = torch.nn.functional.normalize(features.float(), dim=1)
        sims = [(chunk @ self.bank.T).topk(self.k, dim=1).values[:, -1] for chunk in x.split(256)]
        return (1.0 - torch.cat(sims)).double().numpy() if sims else np.zeros(0)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"bank": self.bank}


@dataclass
class ExposureLogit:
    """Outlier exposure: logit of a linear known-vs-negative classifier on standardised [features, colour]."""

    mean: torch.Tensor  # (D,) float64
    scale: torch.Tensor  # (D,)
    coef: torch.Tensor  # (D,)
    intercept: torch.Tensor  # (1,)

    @classmethod
    def fit(cls, known: np.ndarray, negatives: np.ndarray, c: float = EXPOSURE_C) -> ExposureLogit:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        if len(known) < 2 or len(negatives) < 2:
            raise ValueError("the exposure open-set method needs known images and negatives to fit")
        x = np.vstack([known, negatives]).astype(np.float64)
        y = np.r_[np.zeros(len(known)), np.ones(len(negatives))]
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(scaler.transform(x), y)
        return cls(torch.from_numpy(scaler.mean_), torch.from_numpy(scaler.scale_),
                   torch.from_numpy(clf.coef_[0].astype(np.float64)), torch.tensor([float(clf.intercept_[0])], dtype=torch.float64))

    def distance(self, x: np.ndarray) -> np.ndarray:
        z = (torch.as_tensor(np.asarray(x), dtype=torch.float64) - self.mean) / self.scale
        return (z @ self.coef + self.intercept).numpy()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}


def joined(features: torch.Tensor, colour: np.ndarray) -> np.ndarray:
    """[pooled features, colour statistics] per image: what ``exposure`` reads."""
    return np.hstack([features.float().numpy(), np.asarray(colour, np.float64)])


PARTS: dict[str, type] = {"knn": KNNDistance, "mahalanobis": FeatureGaussians, "colour": ColourGaussians,
                          "exposure": ExposureLogit}
#: Parts that read the photo-relative colour statistics (``colour.colour_stats``) instead of pooled features.
COLOUR_PARTS = frozenset({"colour"})
#: Parts that read both.
JOINT_PARTS = frozenset({"exposure"})
Part = KNNDistance | FeatureGaussians | ColourGaussians | ExposureLogit


class OODScorer:
    """Scores images from what the predictor computes anyway: model inputs and pooled features.

    The distance is one part or the sum of several, each divided by its median on known validation
    images so none dominates by its units. Parts: ``knn`` and ``mahalanobis`` on pooled features,
    ``colour`` on the photo-relative colour statistics of the input (``colour.colour_stats``).
    """

    def __init__(self, parts: dict[str, Part], scales: dict[str, float] | None = None,
                 flat_std: float = FLAT_STD) -> None:
        if not parts or set(parts) - set(PARTS):
            raise ValueError(f"open-set parts must be among {sorted(PARTS)}, got {sorted(parts)}")
        self.parts = parts
        self.scales = {n: float((scales or {}).get(n, 1.0)) for n in parts}
        self.flat_std = float(flat_std)

    @property
    def method(self) -> str:
        return "+".join(self.parts)

    @property
    def needs_colour(self) -> bool:
        return bool((COLOUR_PARTS | JOINT_PARTS) & set(self.parts))

    @property
    def needs_features(self) -> bool:
        """True when a part reads the pooled features (an ONNX backend must then export them)."""
        return bool(set(self.parts) - COLOUR_PARTS)

    @classmethod
    def fit(cls, features: torch.Tensor, labels: np.ndarray, n_classes: int, method: str = DEFAULT_METHOD,
            scale_features: torch.Tensor | None = None, colour: np.ndarray | None = None,
            scale_colour: np.ndarray | None = None,
            negatives: tuple[torch.Tensor, np.ndarray] | None = None) -> OODScorer:
        """Fit each part of ``method`` on ``features`` / ``colour`` (statistics of the same images); a combination
        is scaled on ``scale_features`` / ``scale_colour`` (known images, e.g. the validation split).
        ``exposure`` also needs ``negatives``: (features, colour statistics) of the selection negatives."""
        if method not in METHODS:
            raise ValueError(f"open-set method must be one of {METHODS}, got {method!r}")
        if method in JOINT_PARTS:
            if negatives is None or colour is None:
                raise ValueError(f"method {method!r} needs colour statistics and negatives (openset.negatives)")
            return cls({method: ExposureLogit.fit(joined(features, colour), joined(*negatives))})
        names = method.split("+")
        if len(names) > 1 and scale_features is None:
            raise ValueError(f"method {method!r} needs scale_features (known validation images) to weigh its parts")
        if COLOUR_PARTS & set(names) and (colour is None or (len(names) > 1 and scale_colour is None)):
            raise ValueError(f"method {method!r} needs the colour statistics of the fitting (and scaling) images")
        parts = {n: PARTS[n].fit(colour if n in COLOUR_PARTS else features, labels, n_classes) for n in names}
        scorer = cls(parts)
        if len(names) > 1:
            raw = scorer.part_distances(scale_features, scale_colour)
            scorer.scales = {n: float(np.median(raw[n])) or 1.0 for n in names}
        return scorer

    def part_distances(self, features: torch.Tensor, colour: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Unscaled distance of each part."""
        if self.needs_colour and colour is None:
            raise ValueError(f"open-set method {self.method!r} needs colour statistics (colour.colour_stats)")
        return {n: part.distance(joined(features, colour) if n in JOINT_PARTS else colour if n in COLOUR_PARTS else features)
                for n, part in self.parts.items()}

    def distance(self, features: torch.Tensor, colour: np.ndarray | None = None) -> np.ndarray:
        """Sum of the parts' distances, each divided by its scale."""
        return sum(d / self.scales[n] for n, d in self.part_distances(features, colour).items())

    def score(self, features: torch.Tensor, pixel_values: torch.Tensor, mean: tuple[float, ...],
              std: tuple[float, ...]) -> np.ndarray:
        """Distance to the known minerals; ``inf`` for images the input checks reject."""
        colour = colour_stats(pixel_values, mean, std) if self.needs_colour else None
        return np.where(input_check(pixel_values, mean, std, self.flat_std), np.inf, self.distance(features, colour))

    def save(self, model_dir: str | os.PathLike) -> Path:
        from safetensors.torch import save

        path = Path(model_dir) / OOD_FILE
        meta = {"method": self.method, "format": FORMAT, "flat_std": str(self.flat_std), "scales": json.dumps(self.scales)}
        if "knn" in self.parts:
            meta["k"] = str(self.parts["knn"].k)
        tensors = {f"{n}.{k}": v.contiguous() for n, part in self.parts.items() for k, v in part.tensors().items()}
        path.write_bytes(save(tensors, metadata=meta))  # an ordinary write: the user's umask, not save_file's 0600
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OODScorer:
        import safetensors
        from safetensors import safe_open

        redo = "run `hf-minerals calibrate` again to rewrite it"
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                method = meta.get("method", "")
                fmt = meta.get("format")
                if method not in METHODS or fmt not in READS_FORMATS or (fmt == "1" and ("colour" in method or "exposure" in method)):
                    raise ValueError(f"{path}: open-set file of method {method!r}, format {meta.get('format')!r} "
                                     f"(this version reads {METHODS}, formats {READS_FORMATS}); {redo}")
                parts: dict[str, Part] = {}
                for n in method.split("+"):
                    if n == "knn":
                        parts[n] = KNNDistance(f.get_tensor("knn.bank").float(), int(meta.get("k", KNN_K)))
                    elif n == "exposure":
                        parts[n] = ExposureLogit(*(f.get_tensor(f"exposure.{k}").double()
                                                   for k in ("mean", "scale", "coef", "intercept")))
                    elif n == "mahalanobis":
                        parts[n] = FeatureGaussians(f.get_tensor("mahalanobis.means").double(),
                                                    f.get_tensor("mahalanobis.precision").double())
                    else:
                        parts[n] = ColourGaussians(f.get_tensor("colour.means"), f.get_tensor("colour.precisions"))
        except (OSError, safetensors.SafetensorError) as exc:
            raise ValueError(f"{path}: unreadable open-set file ({exc}); {redo}") from exc
        return cls(parts, json.loads(meta.get("scales", "{}")), float(meta.get("flat_std", FLAT_STD)))


def find_scorer(model_id: str | os.PathLike, calibration: dict[str, Any] | None,
                revision: str | None = None) -> OODScorer | None:
    """The scorer of a model folder / Hub repo whose calibration.json names one; None when it has none.

    Same policy as ``model_loader.read_calibration``: a named score that is missing or unreadable is an
    error for a local folder, and a loud warning (no open-set score) for a Hub model.
    """
    from ..model_loader import CalibrationWarning, ModelLoadError

    if not calibration or not calibration.get("ood"):
        return None
    local = Path(str(model_id)).expanduser()
    if local.is_dir():
        path = local / OOD_FILE
        if not path.is_file():
            raise ModelLoadError(f"calibration.json names an open-set score but '{path}' is missing: "
                                 "run `hf-minerals calibrate` again")
        try:
            return OODScorer.load(path)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc
    from huggingface_hub import hf_hub_download

    try:
        return OODScorer.load(hf_hub_download(str(model_id), OOD_FILE, revision=revision))
    except Exception as exc:  # noqa: BLE001 - offline, missing or corrupt: say it loudly, answer without it
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.warn(f"{OOD_FILE} of '{model_id}' could not be read: {why}. Answers have NO open-set score "
                      "(only the confidence threshold says 'unknown').", CalibrationWarning, stacklevel=2)
        return None
