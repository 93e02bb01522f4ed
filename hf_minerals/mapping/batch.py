"""Many sections in one run (``--images``/``--images_from``), over processes with ``accelerate launch``.

Each section goes to ``OUTPUT/<name>/`` (name: the file stem, made unique), finished by a ``done.json``
marker written last, so a rerun skips finished sections and redoes half-written ones. After all
processes meet, the main process writes ``OUTPUT/sections.csv`` (one row per section and phase) and
``OUTPUT/sections.json`` from the per-section results, in input order.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from .. import distributed
from ..predict import Predictor

DONE = "done.json"


def section_dirs(images: list[str], output: Path) -> list[tuple[str, Path]]:
    """(image, folder) per section; repeated stems get ``_2``, ``_3`` ... in input order."""
    seen: dict[str, int] = {}
    out = []
    for image in images:
        stem = Path(image).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append((image, output / (stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")))
    return out


def summary_rows(image: str, folder: Path) -> list[dict[str, Any]]:
    """Phase rows of one finished section (pixel table if present, else the tile table)."""
    for name in ("pixel_abundance.json", "modal_abundance.json"):
        path = folder / name
        if path.exists():
            rec = json.loads(path.read_text())
            return [{"section": folder.name, "image": image, "table": name.split("_")[0], **{
                k: row.get(k, "") for k in ("phase", "area_percent", "ci95_low", "ci95_high", "ore_percent", "pixels")}}
                for row in rec["phases"]]
    raise FileNotFoundError(f"{folder} has no abundance table")


FIELDS = ("section", "image", "table", "phase", "area_percent", "ci95_low", "ci95_high", "ore_percent", "pixels")


def map_many(args: Any, images: list[str]) -> int:
    """Map ``images`` (this process's share) into ``args.output_dir``; the main process writes the summary."""
    from .command import map_one

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = section_dirs(images, out)
    predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                          bf16=args.bf16, unknown_threshold=args.unknown_threshold, backend=args.backend,
                                          ood_threshold=args.ood_threshold, photo_views=args.photo_views)

    def work(job: tuple[str, Path]) -> None:
        image, folder = job
        paths, _ = map_one(args, predictor, image, folder)
        (folder / DONE).write_text(json.dumps({"image": image, "files": sorted(Path(p).name for p in paths.values())}) + "\n")
        print(f"hf-minerals map: {image} -> {folder}", file=sys.stderr)

    ran, skipped = distributed.run_sections(jobs, work, lambda job: (job[1] / DONE).exists())
    st = distributed.state()
    print(f"hf-minerals map: process {st.process_index}: {ran} mapped, {skipped} already done (skipped)", file=sys.stderr)
    if st.is_main_process:
        rows = [r for image, folder in jobs for r in summary_rows(image, folder)]
        with (out / "sections.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        (out / "sections.json").write_text(json.dumps(
            {"sections": [{"image": i, "folder": f.name} for i, f in jobs], "processes": st.num_processes,
             "model": str(args.model)}, indent=2) + "\n")
        print(f"wrote {out / 'sections.csv'} ({len(jobs)} sections)", file=sys.stderr)
    st.wait_for_everyone()
    return 0
