"""Files a mapping run writes: map + overlay PNGs, per-tile probabilities, modal-abundance CSV/JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from .figures import map_rgb, overlay_rgb, save_figure
from .tiler import SectionMap

CSV_FIELDS = ("phase", "kind", "area_percent", "ore_percent", "pixels", "tiles")


def write_outputs(m: SectionMap, output: str | Path, meta: dict[str, Any] | None = None,
                  um_per_px: float | None = None) -> dict[str, Path]:
    """Write everything into ``output``; returns {name: path}."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    name = meta.get("image", "section")
    title = f"{Path(str(name)).name}  {m.width}x{m.height} px, tile {m.grid.tile}/stride {m.grid.stride}"
    if meta.get("synthetic"):
        title = "SYNTHETIC - " + title
    paths = {
        "map": save_figure(m, map_rgb(m), out / "mineral_map.png", "Mineral map: " + title, um_per_px),
        "overlay": save_figure(m, overlay_rgb(m), out / "overlay.png", "Overlay: " + title, um_per_px),
        "tiles": out / "tile_probabilities.npz",
        "csv": out / "modal_abundance.csv",
        "json": out / "modal_abundance.json",
    }
    np.savez_compressed(
        paths["tiles"], probs=m.probs, labels=np.array(m.labels), tile_boxes=m.grid.boxes(),
        owned_boxes=m.grid.owned_boxes(), status=m.status, ood_scores=m.ood_scores, label_index=m.label_index,
        bright_px=m.bright_px, owned_px=m.owned_px, grid_shape=np.array(m.grid.shape),
        image_size=np.array([m.width, m.height]),
    )
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in m.abundance["phases"]:
            writer.writerow({**row, "area_percent": f"{row['area_percent']:.4f}",
                             "ore_percent": "" if row["ore_percent"] is None else f"{row['ore_percent']:.4f}"})
    record = {**meta, "width": m.width, "height": m.height, **m.settings, "um_per_px": um_per_px,
              "timing": {k: round(v, 3) if isinstance(v, float) else v for k, v in m.timing.items()},
              **m.abundance}
    paths["json"].write_text(json.dumps(record, indent=2) + "\n")
    return paths


def abundance_table(phases: list[dict[str, Any]]) -> str:
    """Modal abundance as a Markdown table (phases with any pixel or tile)."""
    lines = ["| phase | area % | ore % | tiles |", "|---|---:|---:|---:|"]
    for r in phases:
        if r["pixels"] or r["tiles"]:
            ore = "" if r["ore_percent"] is None else f"{r['ore_percent']:.2f}"
            lines.append(f"| {r['phase']} | {r['area_percent']:.2f} | {ore} | {r['tiles']} |")
    return "\n".join(lines)
