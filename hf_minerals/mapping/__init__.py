"""Whole-section mapping: tiles streamed from any-size images -> mineral map, overlay, modal abundance.

See docs/mapping.md. ``hf-minerals map --model M --image BIG --tile 224 --output_dir DIR``.
"""

from .command import main
from .outputs import abundance_table, write_outputs
from .sources import ArraySource, SectionSource, open_section
from .tiler import BACKGROUND, SectionMap, luma, map_section, modal_abundance
from .tiles import TileGrid, axis_tiles

__all__ = [
    "BACKGROUND", "ArraySource", "SectionMap", "SectionSource", "TileGrid", "abundance_table", "axis_tiles", "luma", "main",
    "map_section", "modal_abundance", "open_section", "write_outputs",
]
