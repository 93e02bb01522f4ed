"""Mineral image data sets: read a source, split without leakage, report, save, card.

Sources: an image folder (one sub-folder per mineral), a LumenStone-style mask set, a Hub data set id,
or ``synthetic``. See docs/data.md.
"""

from hf_minerals.data.assemble import DEFAULTS, build_dataset, prepare
from hf_minerals.data.card import render_card
from hf_minerals.data.hf_builder import MineralImages, MineralImagesConfig
from hf_minerals.data.records import SPLITS, DataError, features
from hf_minerals.data.report import REPORT_NAME, read_report

__all__ = [
    "DEFAULTS", "REPORT_NAME", "SPLITS", "DataError", "MineralImages", "MineralImagesConfig", "build_dataset",
    "features", "prepare", "read_report", "render_card",
]
