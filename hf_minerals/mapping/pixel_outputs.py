"""Files of a pixel-true mapping run: abundance with 95 % intervals, grain statistics, the label image."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from PIL import Image

from .grains import grain_statistics
from .pixels import PixelMap

CSV_FIELDS = ("phase", "kind", "area_percent", "ci95_low", "ci95_high", "ore_percent", "pixels")


def write_pixel_outputs(pm: PixelMap, output: str | Path, meta: dict[str, Any] | None = None,
                        um_per_px: float | None = None) -> dict[str, Path]:
    """``pixel_abundance.csv/json``, ``grains.json`` and ``phase_labels.png`` (codes 0..C+1, see JSON) in ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pixel_csv": out / "pixel_abundance.csv", "pixel_json": out / "pixel_abundance.json"}
    with paths["pixel_csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in pm.abundance["phases"]:
            writer.writerow({**row, **{k: f"{row[k]:.4f}" for k in ("area_percent", "ci95_low", "ci95_high")},
                             "ore_percent": "" if row["ore_percent"] is None else f"{row['ore_percent']:.4f}"})
    record = {**(meta or {}), "width": pm.section.width, "height": pm.section.height, "um_per_px": um_per_px,
              **pm.settings, "ore_threshold": pm.ore.to_dict(), "colour_models": pm.colour,
              "timing": {k: round(v, 3) for k, v in pm.timing.items()}, **pm.abundance}
    paths["pixel_json"].write_text(json.dumps(record, indent=2) + "\n")
    if pm.labels is not None:
        paths["grains"] = out / "grains.json"
        stats = grain_statistics(pm.labels, pm.phases, um_per_px)
        paths["grains"].write_text(json.dumps({**(meta or {}), **stats}, indent=2) + "\n")
        paths["labels"] = out / "phase_labels.png"
        Image.fromarray(pm.labels).save(paths["labels"])
        (out / "phase_labels.json").write_text(json.dumps({"codes": dict(enumerate(pm.phases))}, indent=2) + "\n")
    return paths


def summary_text(pm: PixelMap) -> str:
    """One line per phase present: area % and its 95 % interval."""
    return "\n".join(f"{r['phase']:<20} {r['area_percent']:8.3f} %  (95 % CI {r['ci95_low']:.3f}-{r['ci95_high']:.3f})"
                     for r in pm.abundance["phases"] if r["pixels"])


__all__ = ["summary_text", "write_pixel_outputs"]
