"""Command line of ``scripts/make_synthetic.py`` / ``hf-minerals synthetic``: parse, call the library, report."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..minerals import ALL_SYNTHETIC_MINERALS, PAPER_MINERALS
from .io import make_gallery, write_image_folder
from .render import render_section_tiles
from .shifts import SHIFTS


@dataclass
class SyntheticArguments:
    """``hf-minerals synthetic``: synthetic reflected-light scenes, a whole section or a gallery (labelled SYNTHETIC)."""

    output_dir: str | None = field(default=None, metadata={"help": "output folder (image folder, or section image + mask)"})
    per_class: int = field(default=20, metadata={"help": "images per class"})
    size: int = field(default=224, metadata={"help": "scene size in px"})
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(PAPER_MINERALS),
                               metadata={"help": "classes (default: the paper's five)", "choices": ALL_SYNTHETIC_MINERALS})
    shift: str | None = field(default=None, metadata={"help": "imaging domain shift (default: none)",
                                                      "choices": sorted(SHIFTS)})
    width: int | None = field(default=None, metadata={"help": "whole-section mode: image width in px (with --height)"})
    height: int | None = field(default=None, metadata={"help": "whole-section mode: image height in px"})
    tile: int = field(default=1024, metadata={"help": "section mode: render in tiles of this size (bounded memory)"})
    gallery: str | None = field(default=None, metadata={"help": "write a gallery PNG (class x examples + a row per shift)"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing synthetic data set in --output_dir"})
    calibration_frames: float | None = field(
        default=None, metadata={"help": "also write each photo's dark frame and white-standard frame (standard of this "
                                        "reflectance in percent, e.g. 20.5 for SiC)"})


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
    from ..cli_args import args_file_for, parse_command_line, save_args

    prog = "hf-minerals synthetic"
    (args,) = parse_command_line([SyntheticArguments], argv, prog=prog)
    if args.output_dir is None and args.gallery is None:
        sys.exit(f"{prog}: error: give --output_dir DIR (data set or section) and/or --gallery PNG")
    if (args.width is None) != (args.height is None):
        sys.exit(f"{prog}: error: --width and --height go together (whole-section mode)")
    t0 = time.perf_counter()
    if args.output_dir is not None:
        output = Path(args.output_dir)
        if args.width is not None:
            try:
                meta = write_section(output, args.width, args.height, args.seed, args.classes, args.shift, args.tile)
            except ValueError as e:
                sys.exit(f"{prog}: error: {e}")
            print(f"wrote SYNTHETIC section {args.width}x{args.height} to {output / meta['file_name']} "
                  f"(+ mask, mapping.json, metadata.jsonl) in {time.perf_counter() - t0:.1f}s")
        else:
            try:
                out = write_image_folder(output, args.classes, args.per_class, args.size, args.seed, args.shift,
                                         overwrite=args.overwrite, calibration_frames=args.calibration_frames)
            except (FileExistsError, ValueError) as e:
                sys.exit(f"{prog}: error: {e}")
            n = args.per_class * len(args.classes)
            print(f"wrote {n} SYNTHETIC images ({len(args.classes)} classes) to {out} in {time.perf_counter() - t0:.1f}s")
        save_args(output / "args.yaml", args, command=prog)
    if args.gallery is not None:
        path = make_gallery(Path(args.gallery), seed=args.seed)
        save_args(args_file_for(path), args, command=prog)
        print(f"wrote gallery {path} (arguments: {args_file_for(path)})")
