"""Command line of ``scripts/make_synthetic.py`` / ``hf-minerals synthetic``: parse, call the library, report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PIL import Image

from ..minerals import ALL_SYNTHETIC_MINERALS, PAPER_MINERALS
from .io import make_gallery, write_image_folder
from .render import render_section_tiles
from .shifts import SHIFTS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_synthetic.py", description="Synthetic reflected-light scenes (labelled SYNTHETIC).")
    p.add_argument("--output", type=Path, help="output folder (image folder, or section image + mask)")
    p.add_argument("--per-class", type=int, default=20, help="images per class (default 20)")
    p.add_argument("--size", type=int, default=224, help="scene size in px (default 224)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", nargs="+", default=list(PAPER_MINERALS), choices=ALL_SYNTHETIC_MINERALS,
                   help="classes (default: the paper's five)")
    p.add_argument("--shift", choices=sorted(SHIFTS), default=None, help="imaging domain shift (default: none)")
    p.add_argument("--width", type=int, help="whole-section mode: image width in px (with --height)")
    p.add_argument("--height", type=int, help="whole-section mode: image height in px")
    p.add_argument("--tile", type=int, default=1024, help="section mode: render in tiles of this size (bounded memory)")
    p.add_argument("--gallery", type=Path, help="write a gallery PNG (class x examples + a row per shift)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic data set in --output")
    p.add_argument("--calibration-frames", type=float, default=None, metavar="R",
                   help="also write each photo's dark frame and white-standard frame (standard of R %%, e.g. 20.5 SiC)")
    return p


def write_section(output: Path, width: int, height: int, seed: int, classes, shift, tile: int) -> dict:
    """Stream a section to ``output/synthetic_section_<seed>.png`` + mask, tile by tile (bounded memory)."""
    import numpy as np

    from .render import MAX_PIXELS_IN_MEMORY

    if width * height > MAX_PIXELS_IN_MEMORY:
        raise ValueError(f"--width x --height above {MAX_PIXELS_IN_MEMORY} pixels does not fit one PNG in memory; "
                         "stream it with hf_minerals.synthetic.render_section_tiles")
    output.mkdir(parents=True, exist_ok=True)
    image = np.empty((height, width, 3), np.uint8)
    mask = np.empty((height, width), np.uint8)
    for x0, y0, part in render_section_tiles(width, height, seed, classes, shift, tile):
        h, w = part.mask.shape
        image[y0 : y0 + h, x0 : x0 + w] = part.image
        mask[y0 : y0 + h, x0 : x0 + w] = part.mask
    stem = f"synthetic_section_{seed}" + (f"_{shift}" if shift else "")
    Image.fromarray(image).save(output / f"{stem}.png")
    (output / "masks").mkdir(exist_ok=True)
    Image.fromarray(mask).save(output / "masks" / f"{stem}.png")
    from ..minerals import MASK_CODES
    from .render import phase_fractions

    (output / "mapping.json").write_text(json.dumps({str(k): v for k, v in MASK_CODES.items()}, indent=1))
    meta = {"file_name": f"{stem}.png", "mask_file_name": f"masks/{stem}.png", "synthetic": True, "kind": "section",
            "seed": seed, "shift": shift, "width": width, "height": height, "classes": list(classes), "tile": tile,
            "phase_fractions": phase_fractions(mask)}
    (output / "metadata.jsonl").write_text(json.dumps(meta) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.output is None and args.gallery is None:
        sys.exit("make_synthetic.py: give --output DIR (data set or section) and/or --gallery PNG")
    if (args.width is None) != (args.height is None):
        sys.exit("make_synthetic.py: --width and --height go together (whole-section mode)")
    t0 = time.perf_counter()
    if args.output is not None:
        if args.width is not None:
            try:
                meta = write_section(args.output, args.width, args.height, args.seed, args.classes, args.shift, args.tile)
            except ValueError as e:
                sys.exit(f"make_synthetic.py: {e}")
            print(f"wrote SYNTHETIC section {args.width}x{args.height} to {args.output / meta['file_name']} "
                  f"(+ mask, mapping.json, metadata.jsonl) in {time.perf_counter() - t0:.1f}s")
        else:
            try:
                out = write_image_folder(args.output, args.classes, args.per_class, args.size, args.seed, args.shift,
                                         overwrite=args.overwrite, calibration_frames=args.calibration_frames)
            except (FileExistsError, ValueError) as e:
                sys.exit(f"make_synthetic.py: {e}")
            n = args.per_class * len(args.classes)
            print(f"wrote {n} SYNTHETIC images ({len(args.classes)} classes) to {out} in {time.perf_counter() - t0:.1f}s")
    if args.gallery is not None:
        path = make_gallery(args.gallery, seed=args.seed)
        print(f"wrote gallery {path}")
