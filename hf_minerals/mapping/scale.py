"""Tile size from pixel sizes: a tile should span what one training image spanned.

A model folder may say how big its training images were: ``inference.json`` with ``um_per_px`` (µm per
pixel of the training images as stored) and ``image_side_px`` (their side). With the section's own pixel
size (``--um_per_px``) the tile becomes ``image_side_px * um_per_px(model) / um_per_px(section)`` image
pixels, so every tile is resampled (by the model's preprocessing) to the training scale. The data set
builder does not record pixel sizes yet, so training does not write this file; write it by hand for a
model whose training scale you know.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

INFERENCE_FILE = "inference.json"
DEFAULT_TILE = 224


def model_scale(model_id: str | os.PathLike) -> dict[str, Any] | None:
    """``{"um_per_px", "image_side_px"}`` from a local model folder's ``inference.json``, or None."""
    path = Path(str(model_id)) / INFERENCE_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if not all(isinstance(record.get(k), (int, float)) and record[k] > 0 for k in ("um_per_px", "image_side_px")):
        raise ValueError(f"{path} needs positive 'um_per_px' and 'image_side_px', got {record}")
    return record


def choose_tile(tile: int | None, model_id: str | os.PathLike, section_um_per_px: float | None) -> tuple[int, str]:
    """(tile px, why): the given tile; else the training scale when both pixel sizes are known; else 224."""
    if tile is not None:
        return tile, "given"
    scale = model_scale(model_id)
    if scale and section_um_per_px:
        t = max(16, round(scale["image_side_px"] * scale["um_per_px"] / section_um_per_px))
        return t, (f"training scale: {scale['image_side_px']} px at {scale['um_per_px']} um/px = "
                   f"{t} px at {section_um_per_px} um/px")
    why = "no inference.json in the model folder" if not scale else "no --um_per_px for the section"
    return DEFAULT_TILE, f"default ({why})"
