"""Showing a map: normalised, drawn over the image as the model saw it."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from PIL import Image

from ..imageio import load_image
from ..preprocessing import DataConfig, resize_crop, to_uint8_tensor


def normalize_map(m: np.ndarray, clip_percentile: float = 99.5) -> np.ndarray:
    """Scale a non-negative map to [0, 1]; clipping the top 0.5 % keeps one hot pixel from hiding the rest."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    top = float(np.percentile(m, clip_percentile)) if m.size else 0.0
    top = top if top > 0 else float(m.max(initial=0.0))
    return np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)


def model_view(image: Any, data_config: DataConfig) -> np.ndarray:
    """The image as the model sees it (resized / centre-cropped by the one preprocessing factory), HxWx3 uint8."""
    t = resize_crop(to_uint8_tensor(image).unsqueeze(0).float(), data_config)[0]
    return t.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def overlay(image: Any, attribution: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Image.Image:
    """Blend a colour-mapped attribution map over an image (the map is resized to the image)."""
    from matplotlib import colormaps

    base = load_image(image, max_pixels=sys.maxsize)  # the one conversion (16-bit scaled, alpha on black)
    m = normalize_map(attribution)
    if m.shape != (base.height, base.width):
        m = np.asarray(Image.fromarray(m, mode="F").resize(base.size, Image.BILINEAR)).clip(0, 1)
    heat = colormaps[cmap](m)[..., :3] * 255.0
    out = (1 - alpha) * np.asarray(base, dtype=np.float32) + alpha * heat
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))
