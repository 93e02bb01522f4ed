"""Pictures of a mapping run: the colour-coded mineral map and the overlay, each with legend and scale bar."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..minerals import map_color
from .tiler import BACKGROUND, SectionMap

#: Map colour of dark (gangue/background) pixels inside classified tiles and of background tiles.
GANGUE_RGB = (40, 40, 40)


def map_rgb(m: SectionMap) -> np.ndarray:
    """(h, w, 3) uint8 canvas: bright pixels in their tile's colour, dark pixels grey-black."""
    names = m.tile_names()
    lut = np.array([GANGUE_RGB if n == BACKGROUND else map_color(n) for n in names] or [GANGUE_RGB], np.uint8)
    rgb = lut[m.canvas_tile]
    rgb[~m.canvas_bright] = GANGUE_RGB
    return rgb


def overlay_rgb(m: SectionMap, alpha: float = 0.5) -> np.ndarray:
    """The photomicrograph thumbnail with the map colours blended onto its bright (ore) pixels."""
    base = m.thumbnail.astype(np.float32)
    col = map_rgb(m).astype(np.float32)
    mix = np.where(m.canvas_bright[..., None], (1 - alpha) * base + alpha * col, base)
    return mix.round().astype(np.uint8)


def _nice_length(target: float) -> float:
    """1, 2 or 5 x 10^k not above ``target``."""
    k = 10 ** math.floor(math.log10(target))
    return max(s * k for s in (1, 2, 5) if s * k <= target)


def save_figure(m: SectionMap, rgb: np.ndarray, path: str | Path, title: str, um_per_px: float | None = None) -> Path:
    """Save ``rgb`` (canvas) with a legend (area %) and a scale bar (um if ``um_per_px`` is known, else px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    h, w = rgb.shape[:2]
    dpi = 100
    fig_w = max(w / dpi, 4.0) + 2.6
    fig_h = max(h / dpi, 3.0) + 0.6
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes((0.2 / fig_w, 0.2 / fig_h, max(w / dpi, 4.0) / fig_w, max(h / dpi, 3.0) / fig_h))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9, loc="left")
    # scale bar: about a fifth of the width, a round number of um (or px)
    unit, per = ("um", um_per_px) if um_per_px else ("px", 1.0)
    length = _nice_length(m.width * per / 5)
    bar = length / per / m.canvas_scale
    x0, y0 = 0.04 * w, 0.95 * h
    ax.add_patch(Rectangle((x0, y0 - 0.012 * h), bar, max(0.012 * h, 2), facecolor="white", edgecolor="black"))
    label = f"{length:g} {'µm' if unit == 'um' else 'px'}"
    ax.text(x0 + bar / 2, y0 - 0.02 * h, label, color="white", ha="center", va="bottom", fontsize=9,
            bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "edgecolor": "none"})
    handles = []
    for row in m.abundance["phases"]:
        if row["pixels"] == 0 and row["kind"] != "gangue/background":
            continue
        colour = GANGUE_RGB if row["phase"] == BACKGROUND else map_color(row["phase"])
        name = "gangue/background" if row["phase"] == BACKGROUND else row["phase"]
        handles.append(Patch(facecolor=np.array(colour) / 255, edgecolor="black",
                             label=f"{name}  {row['area_percent']:.2f} %"))
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, title="area % of section",
               title_fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
