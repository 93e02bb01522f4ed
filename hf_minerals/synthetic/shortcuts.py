"""Label-shortcut controls: can a classifier name a scene's class WITHOUT looking at the mineral?

A generator that draws magnification, coverage, placement or imaging per class lets a model learn the
class from the background, the field width or the ore coverage instead of the mineral. Three controls,
used by the tests (``tests/test_synthetic_shortcuts.py``) and ``scripts/benchmark.py real-robustness``:

(a) a classifier on the *ore-masked* image (ore pixels, dilated past the blur, replaced by gangue pixels
    drawn from the same photo), on downsampled pixels plus colour/texture statistics;
(b) a classifier on the nuisance quantities ``[um/px, ore coverage, grain count, background mean/std]``;
(c) a two-sample Kolmogorov-Smirnov test of each nuisance quantity, each class against all the others.

(a) and (b) should score within 0.1 of chance (1 / number of classes); (c) should find no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .render import ORE_LUT, Scene, render_scene
from .render import ore_grain_count as grain_count

NUISANCE_NAMES = ("um_per_px", "ore_coverage", "grain_count", "background_mean", "background_std")


def _dilate(m: np.ndarray, n: int) -> np.ndarray:
    out = m.copy()
    for _ in range(n):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def masked_image(scene: Scene, grow: int = 3, seed: int = 0) -> np.ndarray:
    """The photo with every ore pixel (grown by ``grow`` px to cover blur and relief halos) replaced by a
    gangue pixel drawn at random from the same photo: what is left is background, imaging and artefacts."""
    ore = _dilate(ORE_LUT[scene.mask], grow)
    img = scene.image.copy()
    bg = scene.image[~ore]
    if len(bg) == 0:  # no gangue visible at all: nothing to draw from
        bg = np.full((1, 3), 64, np.uint8)
    rng = np.random.default_rng(seed)
    img[ore] = bg[rng.integers(0, len(bg), int(ore.sum()))]
    return img


def image_features(img: np.ndarray, side: int = 12) -> np.ndarray:
    """Downsampled pixels (side x side x 3) plus colour statistics and multi-scale texture statistics
    (gradient energy at 1, 2, 4 and 8 px; dark-speck fraction) of an 8-bit RGB image."""
    x = img.astype(np.float32) / 255
    small = np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BOX), np.float32).ravel() / 255
    lum = x.mean(-1)
    med = float(np.median(lum))
    texture = []
    for k in (1, 2, 4, 8):
        h, w = (lum.shape[0] // k) * k, (lum.shape[1] // k) * k
        sub = lum[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))
        gx, gy = np.abs(np.diff(sub, axis=1)), np.abs(np.diff(sub, axis=0))
        texture += [gx.mean(), gy.mean(), np.quantile(gx, 0.9), np.quantile(gy, 0.9)]
    lap = np.abs(lum[1:-1, 1:-1] * 4 - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:])
    stats = [x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0),
             np.quantile(x.reshape(-1, 3), [0.05, 0.5, 0.95], axis=0).ravel(),
             np.histogram(lum, bins=8, range=(0, 1))[0] / lum.size, texture,
             [lap.mean(), np.quantile(lap, 0.95), (lum < 0.6 * med).mean(), (lum < 0.3 * med).mean()]]
    return np.concatenate([small] + [np.ravel(s) for s in stats]).astype(np.float32)


def nuisance(scene: Scene) -> np.ndarray:
    """``NUISANCE_NAMES`` of one scene: what a classifier must not be able to name the class from."""
    ore = ORE_LUT[scene.mask]
    bg = scene.image[~_dilate(ore, 3)].astype(np.float32)
    bg = bg if len(bg) else np.zeros((1, 3), np.float32)
    return np.array([scene.meta["um_per_px"], ore.mean(), grain_count(scene.mask), bg.mean(), bg.mean(-1).std()],
                    np.float32)


@dataclass
class ShortcutReport:
    """Cross-validated accuracies of the two shortcut classifiers, chance level and the KS tests."""

    classes: list[str]
    per_class: int
    chance: float
    masked_accuracy: float  # (a)
    nuisance_accuracy: float  # (b)
    ks: dict[str, dict[str, float]]  # (c) quantity -> class -> p-value (class vs all other classes)
    alpha: float  # Bonferroni-corrected level the p-values are held to

    def ks_failures(self) -> list[tuple[str, str, float]]:
        return [(q, c, p) for q, per in self.ks.items() for c, p in per.items() if p < self.alpha]

    def to_dict(self) -> dict:
        return {"classes": self.classes, "per_class": self.per_class, "chance": round(self.chance, 3),
                "masked_image_accuracy": round(self.masked_accuracy, 3),
                "nuisance_accuracy": round(self.nuisance_accuracy, 3),
                "ks_alpha_bonferroni": self.alpha, "ks_min_p": {q: round(min(v.values()), 5) for q, v in self.ks.items()},
                "ks_failures": [[q, c, round(p, 6)] for q, c, p in self.ks_failures()]}


def _cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Mean stratified k-fold accuracy of a scaled logistic regression and a small random forest (the better)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.3))
    rf = RandomForestClassifier(n_estimators=60, min_samples_leaf=3, random_state=seed, n_jobs=1)
    return max(float(cross_val_score(m, x, y, cv=cv).mean()) for m in (lr, rf))


def shortcut_report(classes: Sequence[str], per_class: int = 36, size: int = 96, seed: int = 7,
                    shift: str | None = None, alpha: float = 0.01, render=render_scene) -> ShortcutReport:
    """Render ``per_class`` scenes of each class and run the three controls; ``render`` is swappable so the
    same controls can be pointed at another generator."""
    from scipy.stats import ks_2samp

    feats, nuis, labels = [], [], []
    for k, m in enumerate(classes):
        for i in range(per_class):
            sc = render(m, size, 50_000 + seed * 1000 + i, shift)
            feats.append(image_features(masked_image(sc, seed=i)))
            nuis.append(nuisance(sc))
            labels.append(k)
    x, z, y = np.stack(feats), np.stack(nuis), np.array(labels)
    ks: dict[str, dict[str, float]] = {}
    for j, q in enumerate(NUISANCE_NAMES):
        ks[q] = {c: float(ks_2samp(z[y == k, j], z[y != k, j]).pvalue) for k, c in enumerate(classes)}
    return ShortcutReport(list(classes), per_class, 1 / len(classes), _cv_accuracy(x, y), _cv_accuracy(z, y), ks,
                          alpha / (len(classes) * len(NUISANCE_NAMES)))
