"""``hf-minerals map`` / ``scripts/map_section.py``: map a whole section image into ``--output``."""

from __future__ import annotations

import argparse
import sys

from ..imageio import DEFAULT_MAX_PIXELS
from ..predict import Predictor
from .outputs import write_outputs
from .sources import open_section
from .tiler import DEFAULT_BACKGROUND_LUMA, DEFAULT_MIN_ORE_SHARE, map_section


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hf-minerals map", description="Mineral map and modal abundance of a whole section.")
    p.add_argument("--model", required=True, help="model folder or Hub id (calibration.json used if present)")
    p.add_argument("--image", required=True, help="PNG/JPEG/TIFF (decoded whole, <= --max-pixels) or "
                   "uncompressed TIFF / .npy (streamed, any size)")
    p.add_argument("--tile", type=int, default=224, help="tile side in image px")
    p.add_argument("--stride", type=int, default=None, help="tile step in px (default: = tile; must be <= tile)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on AMX/AVX512-bf16 CPUs)")
    p.add_argument("--background-luma", type=int, default=DEFAULT_BACKGROUND_LUMA,
                   help="pixels with luma below this (0-255) are gangue/background")
    p.add_argument("--min-ore-share", type=float, default=DEFAULT_MIN_ORE_SHARE,
                   help="tiles with a smaller share of bright pixels are background, not classified")
    p.add_argument("--unknown-threshold", type=float, default=None, help="default: calibration.json, else off")
    p.add_argument("--um-per-px", type=float, default=None, help="pixel size, for a scale bar in micrometres")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="limit for images decoded whole")
    p.add_argument("--canvas-size", type=int, default=1600, help="longest side of the map/overlay pictures")
    p.add_argument("--synthetic", action="store_true", help="label the outputs SYNTHETIC (synthetic input)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                          bf16=args.bf16, unknown_threshold=args.unknown_threshold)
    with open_section(args.image, max_pixels=args.max_pixels) as src:
        m = map_section(predictor, src, tile=args.tile, stride=args.stride, background_luma=args.background_luma,
                        min_ore_share=args.min_ore_share, canvas_max_side=args.canvas_size,
                        progress=not args.no_progress)
    synthetic = args.synthetic or "synthetic" in args.image.lower()
    meta = {"image": args.image, "model": str(args.model), "synthetic": synthetic, "bf16": args.bf16}
    paths = write_outputs(m, args.output, meta, um_per_px=args.um_per_px)
    for row in m.abundance["phases"]:
        if row["pixels"]:
            print(f"{row['phase']:<24} {row['area_percent']:8.3f} %  ({row['pixels']:,} px, {row['tiles']} tiles)")
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0
