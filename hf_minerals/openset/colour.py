"""Photo-relative colour statistics of an image: what a petrographer reads first (how bright and what tint
the ore is, next to the gangue) and what the pooled features of a small model may blur.

The feature distance alone confuses unseen minerals that share a known mineral's texture but not its colour
(sphalerite: dark grey, R ~17 %; galena: pure white, no yellow tint). These statistics are built to
survive the camera: brightness is taken relative to the photo's own brightest pixels (the exposure
cancels), and the ore's tint relative to the darker half of the photo (usually gangue, which is neutral
grey, so a white-balance cast cancels too). All from linear RGB of the model input (after the shared
preprocessing), so the Space, the predictor and the mapper compute them alike.
"""

from __future__ import annotations

import numpy as np
import torch

#: Names of the statistics (columns of ``colour_stats``), for calibration.json and docs. Only photo-relative
#: ones: the absolute tint of the ore and the photo's colourfulness were candidates too, and lost on the
#: selection negatives once the generator varied lamp, white balance and exposure (docs/benchmarks.md).
STATS: tuple[str, ...] = (
    "log Y10/Y99", "log Y50/Y99", "log Y90/Y99",  # brightness distribution, exposure-free
    "ore-vs-rest log R/G", "ore-vs-rest log B/G",  # tint of the brightest decile relative to the darker half
    "ore tint spread",  # std of the ore's tint (bireflectance, zoning, mixed ores)
)
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def colour_stats(pixel_values: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(N, len(STATS)) float64 statistics of model inputs (normalised pixel values)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    lin = srgb_to_linear((pixel_values.float().cpu() * s + m).clamp(0, 1)).flatten(2)  # (N, 3, P)
    y = (lin * _LUMA.view(1, 3, 1)).sum(1)  # (N, P)
    q = torch.quantile(y, torch.tensor([0.1, 0.5, 0.9, 0.99]), dim=1).T  # (N, 4)
    eps = 1e-3 * q[:, 3:4].clamp_min(1e-3) + 1e-4
    shape = torch.log((q[:, :3] + eps) / (q[:, 3:4] + eps))
    tint = torch.log(lin + eps[:, :, None]) - torch.log(lin[:, 1:2] + eps[:, :, None])  # (N, 3, P): R/G, 0, B/G
    tint = tint[:, [0, 2]]  # (N, 2, P)
    ore = (y >= q[:, 2:3]).unsqueeze(1).float()  # brightest decile
    rest = (y <= q[:, 1:2]).unsqueeze(1).float()  # darker half
    ore_tint = (tint * ore).sum(2) / ore.sum(2).clamp_min(1)
    rest_tint = (tint * rest).sum(2) / rest.sum(2).clamp_min(1)
    spread = (((tint - ore_tint[:, :, None]) ** 2 * ore).sum((1, 2)) / (2 * ore.sum((1, 2))).clamp_min(1)).sqrt()
    out = torch.cat([shape, ore_tint - rest_tint, spread[:, None]], dim=1)
    return out.double().numpy()


class ColourGaussians:
    """Class-conditional Gaussians (each its own covariance, ridged) over ``colour_stats``; the distance is the
    Mahalanobis distance to the nearest class. Low-dimensional, so a full covariance per class is affordable
    and the classes' different colour spreads (stibnite's bireflectance, gold's tint) are kept."""

    RIDGE = 1e-2  # relative to the class's mean variance: a class with little colour variation stays usable

    def __init__(self, means: torch.Tensor, precisions: torch.Tensor) -> None:
        self.means = means.double()  # (C, d)
        self.precisions = precisions.double()  # (C, d, d)

    @classmethod
    def fit(cls, stats: np.ndarray, labels: np.ndarray, n_classes: int = 0) -> ColourGaussians:
        x = torch.as_tensor(np.asarray(stats, np.float64))
        y = np.asarray(labels)
        means, precs = [], []
        pooled = torch.cov(x.T) if len(x) > 1 else torch.eye(x.shape[1], dtype=x.dtype)
        for c in sorted(set(y.tolist())):
            xc = x[torch.as_tensor(y == c)]
            cov = torch.cov(xc.T) if len(xc) > x.shape[1] else pooled
            cov = cov + cls.RIDGE * float(cov.diagonal().mean().clamp_min(1e-9)) * torch.eye(x.shape[1], dtype=x.dtype)
            means.append(xc.mean(0))
            p = torch.linalg.inv(cov)
            precs.append((p + p.T) / 2)
        return cls(torch.stack(means), torch.stack(precs))

    def distance(self, stats: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(stats, np.float64))
        d = x[:, None, :] - self.means[None]  # (N, C, d)
        d2 = torch.einsum("ncd,cde,nce->nc", d, self.precisions, d)
        return d2.clamp_min(0).min(1).values.sqrt().numpy()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"means": self.means, "precisions": self.precisions}
