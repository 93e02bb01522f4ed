"""Mineral vocabulary shared by every module: names, mask codes, map colours, misspelling hints.

Mask codes follow LumenStone (Khvostikov et al. 2021) so its masks and ours read the same way;
codes >= 13 are hf-minerals extensions (gold, stibnite and the synthetic background phases).
"""

from __future__ import annotations

import difflib

#: Cai et al. (2024) classes, the default label set.
PAPER_MINERALS: tuple[str, ...] = ("arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite")
#: The authors' code adds these two.
EXTRA_MINERALS: tuple[str, ...] = ("galena", "sphalerite")
ALL_SYNTHETIC_MINERALS: tuple[str, ...] = PAPER_MINERALS + EXTRA_MINERALS

#: Label-mask codes (LumenStone 0-12, hf-minerals extensions from 13).
MASK_CODES: dict[int, str] = {
    0: "background",
    1: "chalcopyrite",
    2: "galena",
    3: "magnetite",
    4: "bornite",
    5: "pyrrhotite",
    6: "pyrite",
    7: "pentlandite",
    8: "sphalerite",
    9: "arsenopyrite",
    10: "hematite",
    11: "tennantite-tetrahedrite",
    12: "covellite",
    13: "gold",
    14: "stibnite",
    20: "quartz",
    21: "carbonate",
    22: "resin",
    23: "pit",
}
CODE_OF: dict[str, int] = {name: code for code, name in MASK_CODES.items()}

#: Phases that are not ore minerals: never a class label, excluded from modal ore abundance.
BACKGROUND_PHASES: frozenset[str] = frozenset({"background", "gangue", "quartz", "carbonate", "resin", "pit"})

#: Every mineral name we know, for misspelling hints on folder names.
KNOWN_MINERALS: tuple[str, ...] = tuple(
    sorted({n for n in MASK_CODES.values() if n not in BACKGROUND_PHASES} | {"electrum", "marcasite"})
)

#: Colours for mineral maps (RGB); chosen to be distinguishable, not to look like the mineral.
MAP_COLORS: dict[str, tuple[int, int, int]] = {
    "arsenopyrite": (31, 119, 180),
    "chalcopyrite": (44, 160, 44),
    "gold": (255, 215, 0),
    "pyrite": (214, 39, 40),
    "stibnite": (148, 103, 189),
    "galena": (23, 190, 207),
    "sphalerite": (140, 86, 75),
    "magnetite": (127, 127, 127),
    "bornite": (227, 119, 194),
    "pyrrhotite": (188, 189, 34),
    "pentlandite": (255, 127, 14),
    "hematite": (120, 20, 20),
    "tennantite-tetrahedrite": (100, 100, 200),
    "covellite": (0, 0, 139),
    "background": (0, 0, 0),
    "unknown": (255, 255, 255),
}


def map_color(name: str) -> tuple[int, int, int]:
    """Colour of a phase on a mineral map; unseen names get a stable colour from their hash."""
    if name in MAP_COLORS:
        return MAP_COLORS[name]
    h = sum(ord(c) * (i + 1) for i, c in enumerate(name))
    return (h * 37 % 200 + 30, h * 91 % 200 + 30, h * 53 % 200 + 30)


def suggest_mineral(name: str) -> str | None:
    """The known mineral a folder name probably meant ('stbnite' -> 'stibnite'), or None if exact/unknown."""
    key = name.strip().lower()
    if key in KNOWN_MINERALS:
        return None
    match = difflib.get_close_matches(key, KNOWN_MINERALS, n=1, cutoff=0.75)
    return match[0] if match else None
