"""``hf-minerals map`` / ``scripts/map_section.py``: map a whole section image into ``--output_dir``.

One section (``--image``), or many (``--images`` / ``--images_from``; see :mod:`.batch`), also over
processes and machines under ``accelerate launch`` (:mod:`hf_minerals.distributed`).
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import reflectance
from ..distributed import is_distributed
from ..inputs import MAX_PIXELS
from ..predict import BACKEND_HELP, Predictor
from .outputs import write_outputs
from .sources import CalibratedSource, SectionSource, open_section
from .tiler import DEFAULT_BACKGROUND_LUMA, DEFAULT_MIN_ORE_SHARE, map_section


@dataclass
class MapArguments:
    """``hf-minerals map``: mineral map and modal abundance of a whole section (or of many)."""

    model: str = field(metadata={"help": "model folder or Hub id (calibration.json used if present)"})
    output_dir: str = field(metadata={"help": "output folder (map, overlay, abundance, args.yaml); with many "
                                              "sections one sub-folder each, plus sections.csv"})
    image: str | None = field(default=None, metadata={
        "help": "PNG/JPEG/TIFF (decoded whole, <= --max_pixels) or uncompressed TIFF / .npy (streamed, any size)"})
    images: list[str] | None = field(default=None, metadata={
        "help": "many sections: each mapped into OUTPUT_DIR/<name>/, summary in OUTPUT_DIR/sections.csv; split over "
                "processes under `accelerate launch`; sections already mapped are skipped"})
    images_from: str | None = field(default=None, metadata={"help": "a text file with one section path per line"})
    tile: int | None = field(default=None, metadata={
        "help": "tile side in image px (default: the model's training scale when inference.json and --um_per_px "
                "give both pixel sizes, else 224)"})
    stride: int | None = field(default=None, metadata={
        "help": "tile step in px (default: tile / 2 with --abundance pixel, = tile with tile; must be <= tile)"})
    abundance: str = field(default="pixel", metadata={
        "help": "pixel: every ore pixel its own phase (overlapping tiles + colour, per-image ore threshold, 95%% "
                "intervals, grains.json); tile: every ore pixel takes its tile's answer", "choices": ["pixel", "tile"]})
    batch_size: int = 32
    threads: int | None = None
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 inference (default: where the CPU runs it natively and calibration.json records >= 99.5%% "
                "agreement with fp32)"})
    backend: str = field(default="auto", metadata={"help": BACKEND_HELP, "choices": ["auto", "torch", "onnx"]})
    background_luma: int | None = field(default=None, metadata={
        "help": "pixels with luma below this (0-255) are gangue/background (default: a per-image threshold on "
                f"illumination-flattened luma with --abundance pixel, {DEFAULT_BACKGROUND_LUMA} with tile)"})
    min_ore_share: float = field(default=DEFAULT_MIN_ORE_SHARE,
                                 metadata={"help": "tiles with a smaller share of bright pixels are background"})
    unknown_threshold: float | None = field(default=None, metadata={"help": "default: calibration.json, else off"})
    ood_threshold: float | None = field(default=None, metadata={
        "help": "open-set score above which a tile is unknown (default: calibration.json, else off)"})
    um_per_px: float | None = field(default=None, metadata={"help": "pixel size: scale bar and grain sizes in micrometres"})
    max_pixels: int | None = field(default=None, metadata={
        "help": f"limit for images decoded whole (default: the shared input policy, {MAX_PIXELS:,})"})
    canvas_size: int = field(default=1600, metadata={"help": "longest side of the map/overlay pictures"})
    synthetic: bool = field(default=False, metadata={"help": "label the outputs SYNTHETIC (synthetic input)"})
    no_progress: bool = False
    photo_views: bool | None = field(
        default=None, metadata={"help": "average with the photo-normalised view, white reference of the WHOLE section "
                                        "(default: on for models trained with photo views)"})


def main(argv: list[str] | None = None) -> int:
    from ..cli_args import parse_command_line

    args, refl_args = parse_command_line([MapArguments, reflectance.ReflectanceArguments], argv, prog="hf-minerals map")
    try:  # dark/white frames of the section's field (mosaics: same aspect ratio)
        refl = reflectance.from_args(refl_args)
    except ValueError as exc:
        sys.exit(f"hf-minerals map: error: {exc}")
    images = list(args.images or [])
    if args.images_from:
        images += [ln.strip() for ln in Path(args.images_from).read_text().splitlines() if ln.strip()]
    if bool(images) == bool(args.image):
        sys.exit("hf-minerals map: error: give either --image (one section) or --images / --images_from (many)")
    if images or is_distributed():
        if refl is not None:
            sys.exit("hf-minerals map: error: --dark/--white work with --image; for many sections run "
                     "`hf-minerals calibrate-images` on them first")
        from .batch import map_many

        return map_many(args, images or [args.image])
    with open_section(args.image, max_pixels=args.max_pixels) as raw_src:  # a bad image fails before the model loads
        predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                              bf16=args.bf16, unknown_threshold=args.unknown_threshold, backend=args.backend,
                                              ood_threshold=args.ood_threshold, photo_views=args.photo_views)
        src = raw_src if refl is None else CalibratedSource(raw_src, refl)  # every reader sees reflectance
        paths, summary = map_one(args, predictor, args.image, args.output_dir, src=src)
    print(summary)
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def map_one(args: MapArguments, predictor: Predictor, image: str, output_dir: str | Path,
            src: SectionSource | None = None) -> tuple[dict[str, Any], str]:
    """Map one section (``src``: already open, else opened here) into ``output_dir`` with the options in
    ``args``; returns ({name: path}, summary text)."""
    from ..cli_args import save_args
    from .scale import choose_tile

    tile, tile_why = choose_tile(args.tile, args.model, args.um_per_px)
    args = dataclasses.replace(args, tile=tile)
    synthetic = args.synthetic or "synthetic" in image.lower()
    meta = {"image": image, "model": str(args.model), "synthetic": synthetic, "bf16": predictor.bf16,
            "backend": predictor.backend,
            "tile_choice": tile_why}
    with nullcontext(src) if src is not None else open_section(image, max_pixels=args.max_pixels) as src:
        if args.abundance == "pixel":
            from .pixel_outputs import summary_text, write_pixel_outputs
            from .pixels import map_pixels

            pm = map_pixels(predictor, src, tile=args.tile, stride=args.stride, background_luma=args.background_luma,
                            canvas_max_side=args.canvas_size, progress=not args.no_progress)
            paths = write_outputs(pm.section, output_dir, meta, um_per_px=args.um_per_px)
            paths.update(write_pixel_outputs(pm, output_dir, meta, um_per_px=args.um_per_px))
            summary = summary_text(pm)
        else:
            m = map_section(predictor, src, tile=args.tile, stride=args.stride,
                            background_luma=args.background_luma or DEFAULT_BACKGROUND_LUMA,
                            min_ore_share=args.min_ore_share, canvas_max_side=args.canvas_size,
                            progress=not args.no_progress)
            paths = write_outputs(m, output_dir, meta, um_per_px=args.um_per_px)
            summary = "\n".join(f"{r['phase']:<24} {r['area_percent']:8.3f} %  ({r['pixels']:,} px, {r['tiles']} tiles)"
                                for r in m.abundance["phases"] if r["pixels"])
    one = dataclasses.replace(args, image=image, images=None, images_from=None, output_dir=str(output_dir))
    paths["args"] = save_args(Path(output_dir) / "args.yaml", one, command="hf-minerals map")
    return paths, summary
