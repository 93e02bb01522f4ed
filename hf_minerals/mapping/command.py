"""``hf-minerals map`` / ``scripts/map_section.py``: map a whole section image into ``--output``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..distributed import is_distributed
from ..imageio import DEFAULT_MAX_PIXELS
from ..predict import Predictor
from .outputs import write_outputs
from .sources import open_section
from .tiler import DEFAULT_BACKGROUND_LUMA, DEFAULT_MIN_ORE_SHARE, map_section


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hf-minerals map", description="Mineral map and modal abundance of a whole section.")
    p.add_argument("--model", required=True, help="model folder or Hub id (calibration.json used if present)")
    p.add_argument("--image", default=None, help="PNG/JPEG/TIFF (decoded whole, <= --max-pixels) or "
                   "uncompressed TIFF / .npy (streamed, any size)")
    p.add_argument("--images", nargs="+", default=None,
                   help="many sections: each mapped into OUTPUT/<name>/, summary in OUTPUT/sections.csv; "
                   "split over processes under `accelerate launch`; sections already mapped are skipped")
    p.add_argument("--images_from", "--images-from", default=None, help="a text file with one section path per line")
    p.add_argument("--tile", type=int, default=224, help="tile side in image px")
    p.add_argument("--stride", type=int, default=None, help="tile step in px (default: = tile; must be <= tile)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on AMX/AVX512-bf16 CPUs)")
    p.add_argument("--background-luma", type=int, default=None,
                   help="pixels with luma below this (0-255) are gangue/background (default: a per-image threshold "
                   f"on illumination-flattened luma with --abundance pixel, {DEFAULT_BACKGROUND_LUMA} with tile)")
    p.add_argument("--min-ore-share", type=float, default=DEFAULT_MIN_ORE_SHARE,
                   help="tiles with a smaller share of bright pixels are background, not classified")
    p.add_argument("--unknown-threshold", type=float, default=None, help="default: calibration.json, else off")
    p.add_argument("--um-per-px", type=float, default=None, help="pixel size, for a scale bar in micrometres")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="limit for images decoded whole")
    p.add_argument("--canvas-size", type=int, default=1600, help="longest side of the map/overlay pictures")
    p.add_argument("--synthetic", action="store_true", help="label the outputs SYNTHETIC (synthetic input)")
    p.add_argument("--abundance", choices=("pixel", "tile"), default="pixel",
                   help="pixel: every ore pixel its own phase (overlapping tiles + colour; per-image ore threshold, "
                   "95%% intervals, grains.json); tile: every ore pixel takes its tile's answer")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    images = list(args.images or [])
    if args.images_from:
        images += [ln.strip() for ln in Path(args.images_from).read_text().splitlines() if ln.strip()]
    if bool(images) == bool(args.image):
        parser.error("give either --image (one section) or --images / --images_from (many)")
    if images or is_distributed():
        from .batch import map_many

        return map_many(args, images or [args.image])
    predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                          bf16=args.bf16, unknown_threshold=args.unknown_threshold)
    synthetic = args.synthetic or "synthetic" in args.image.lower()
    meta = {"image": args.image, "model": str(args.model), "synthetic": synthetic, "bf16": args.bf16}
    if args.abundance == "pixel":
        return _pixel_map(args, predictor, meta)
    with open_section(args.image, max_pixels=args.max_pixels) as src:
        m = map_section(predictor, src, tile=args.tile, stride=args.stride, background_luma=args.background_luma or DEFAULT_BACKGROUND_LUMA,
                        min_ore_share=args.min_ore_share, canvas_max_side=args.canvas_size,
                        progress=not args.no_progress)
    paths = write_outputs(m, args.output, meta, um_per_px=args.um_per_px)
    for row in m.abundance["phases"]:
        if row["pixels"]:
            print(f"{row['phase']:<24} {row['area_percent']:8.3f} %  ({row['pixels']:,} px, {row['tiles']} tiles)")
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def map_one(args: argparse.Namespace, predictor: Predictor, image: str, output: str | Path) -> dict:
    """Map one section into ``output`` with the options in ``args``; returns {name: path}."""
    synthetic = args.synthetic or "synthetic" in image.lower()
    meta = {"image": image, "model": str(args.model), "synthetic": synthetic, "bf16": predictor.bf16}
    sub = argparse.Namespace(**{**vars(args), "image": image, "output": str(output)})
    if args.abundance == "pixel":
        return _pixel_map(sub, predictor, meta, quiet=True)
    with open_section(image, max_pixels=args.max_pixels) as src:
        m = map_section(predictor, src, tile=args.tile, stride=args.stride,
                        background_luma=args.background_luma or DEFAULT_BACKGROUND_LUMA,
                        min_ore_share=args.min_ore_share, canvas_max_side=args.canvas_size, progress=False)
    return write_outputs(m, output, meta, um_per_px=args.um_per_px)


def _pixel_map(args: argparse.Namespace, predictor: Predictor, meta: dict, quiet: bool = False) -> int | dict:
    from .pixel_outputs import print_summary, write_pixel_outputs
    from .pixels import map_pixels

    with open_section(args.image, max_pixels=args.max_pixels) as src:
        pm = map_pixels(predictor, src, tile=args.tile, stride=args.stride, background_luma=args.background_luma,
                        canvas_max_side=args.canvas_size, progress=not args.no_progress)
    paths = write_outputs(pm.section, args.output, meta, um_per_px=args.um_per_px)
    paths.update(write_pixel_outputs(pm, args.output, meta, um_per_px=args.um_per_px))
    if quiet:
        return paths
    print_summary(pm)
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0
