"""``hf-minerals map`` / ``scripts/map_section.py``: map a whole section image into ``--output_dir``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import MAX_PIXELS
from ..predict import Predictor
from .outputs import write_outputs
from .sources import open_section
from .tiler import DEFAULT_BACKGROUND_LUMA, DEFAULT_MIN_ORE_SHARE, map_section


@dataclass
class MapArguments:
    """``hf-minerals map``: mineral map and modal abundance of a whole section."""

    model: str = field(metadata={"help": "model folder or Hub id (calibration.json used if present)"})
    image: str = field(metadata={"help": "PNG/JPEG/TIFF (decoded whole, <= --max_pixels) or uncompressed TIFF / .npy "
                                         "(streamed, any size)"})
    output_dir: str = field(metadata={"help": "output folder (map, overlay, abundance, args.yaml)"})
    tile: int = field(default=224, metadata={"help": "tile side in image px"})
    stride: int | None = field(default=None, metadata={"help": "tile step in px (default: = tile; must be <= tile)"})
    batch_size: int = 32
    threads: int | None = None
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (faster on AMX/AVX512-bf16 CPUs)"})
    background_luma: int = field(default=DEFAULT_BACKGROUND_LUMA,
                                 metadata={"help": "pixels with luma below this (0-255) are gangue/background"})
    min_ore_share: float = field(default=DEFAULT_MIN_ORE_SHARE,
                                 metadata={"help": "tiles with a smaller share of bright pixels are background"})
    unknown_threshold: float | None = field(default=None, metadata={"help": "default: calibration.json, else off"})
    ood_threshold: float | None = field(default=None, metadata={
        "help": "open-set score above which a tile is unknown (default: calibration.json, else off)"})
    um_per_px: float | None = field(default=None, metadata={"help": "pixel size, for a scale bar in micrometres"})
    max_pixels: int | None = field(default=None, metadata={
        "help": f"limit for images decoded whole (default: the shared input policy, {MAX_PIXELS:,})"})
    canvas_size: int = field(default=1600, metadata={"help": "longest side of the map/overlay pictures"})
    synthetic: bool = field(default=False, metadata={"help": "label the outputs SYNTHETIC (synthetic input)"})
    no_progress: bool = False


def main(argv: list[str] | None = None) -> int:
    from ..cli_args import parse_command_line, save_args

    (args,) = parse_command_line([MapArguments], argv, prog="hf-minerals map")
    with open_section(args.image, max_pixels=args.max_pixels) as src:  # a bad image fails before the model loads
        predictor = Predictor.from_pretrained(args.model, batch_size=args.batch_size, num_threads=args.threads,
                                              bf16=args.bf16, unknown_threshold=args.unknown_threshold,
                                              ood_threshold=args.ood_threshold)
        m = map_section(predictor, src, tile=args.tile, stride=args.stride, background_luma=args.background_luma,
                        min_ore_share=args.min_ore_share, canvas_max_side=args.canvas_size,
                        progress=not args.no_progress)
    synthetic = args.synthetic or "synthetic" in args.image.lower()
    meta = {"image": args.image, "model": str(args.model), "synthetic": synthetic, "bf16": args.bf16}
    paths = write_outputs(m, args.output_dir, meta, um_per_px=args.um_per_px)
    paths["args"] = save_args(Path(args.output_dir) / "args.yaml", args, command="hf-minerals map")
    for row in m.abundance["phases"]:
        if row["pixels"]:
            print(f"{row['phase']:<24} {row['area_percent']:8.3f} %  ({row['pixels']:,} px, {row['tiles']} tiles)")
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0
