"""Is a map faithful? Energy inside the grain mask, the pointing game, and deletion curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..predict import softmax
from .layers import AttributionModel
from .methods import _eval_mode


def energy_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's (non-negative) attribution energy inside its boolean mask, (N,)."""
    maps = np.clip(maps, 0, None).reshape(len(maps), -1)
    masks = masks.reshape(len(masks), -1).astype(bool)
    total = maps.sum(1)
    return np.where(total > 0, (maps * masks).sum(1) / np.maximum(total, 1e-12), np.nan)


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1.0 where the map's maximum falls inside the mask, else 0.0, (N,)."""
    flat = maps.reshape(len(maps), -1)
    hit = masks.reshape(len(masks), -1).astype(bool)[np.arange(len(flat)), flat.argmax(1)]
    return hit.astype(np.float64)


@torch.no_grad()
def deletion_curve(model: Any, pixel_values: torch.Tensor, maps: np.ndarray, target: Sequence[int],
                   steps: int = 16, seed: int = 0) -> np.ndarray:
    """(N, steps+1) probability of ``target`` as the most-attributed pixels are set to the mean colour.

    Ties (Grad-CAM's flat zeros) are broken at random. A faithful map makes the curve fall fast (low area).
    """
    wrapper = model if isinstance(model, AttributionModel) else AttributionModel(model)
    gen = np.random.default_rng(seed)
    n, _, h, w = pixel_values.shape
    out = np.zeros((n, steps + 1))
    with _eval_mode(wrapper.model), torch.no_grad():
        for i in range(n):
            order = np.lexsort((gen.random(h * w), -maps[i].reshape(-1)))  # by map desc, random ties
            ranks = np.empty(h * w, np.int64)
            ranks[order] = np.arange(h * w)
            cut = torch.from_numpy(ranks.reshape(h, w))
            keep = torch.stack([cut >= math.ceil(k * h * w / steps) for k in range(steps + 1)]).unsqueeze(1)
            batch = pixel_values[i : i + 1] * keep  # removed pixels -> 0 = the mean colour
            out[i] = softmax(wrapper(batch))[:, int(target[i])]
    return out


def curve_area(curve: np.ndarray) -> np.ndarray:
    """Normalised area under curves sampled at equal fractions of pixels removed (trapezoid rule)."""
    c = np.asarray(curve, dtype=np.float64)
    return (c[:, :-1] + c[:, 1:]).sum(1) / (2 * (c.shape[1] - 1))
