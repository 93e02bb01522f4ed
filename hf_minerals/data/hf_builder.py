"""The "loading script" for datasets >= 4: a ``GeneratorBasedBuilder`` that builds the mineral set from a folder.

    builder = MineralImages(data_dir="my_minerals/", cache_dir="outputs/cache", patch_size=224)
    builder.download_and_prepare()
    dsd = builder.as_dataset()

It shares every step with ``build_dataset`` (same sources, splits and report), so both give the same rows.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from hf_minerals.data.assemble import DEFAULTS, generate_rows, prepare
from hf_minerals.data.records import SPLITS, features


@dataclass
class MineralImagesConfig(datasets.BuilderConfig):
    """``data_dir`` is the source folder; the rest are ``build_dataset`` options."""

    patch_size: int = DEFAULTS["patch_size"]
    stride: int | None = None
    purity: float = DEFAULTS["purity"]
    group_regex: str | None = None
    group_column: str = "group"
    ratios: tuple[float, float, float] = DEFAULTS["ratios"]
    seed: int = 0
    max_pixels: int | None = DEFAULTS["max_pixels"]
    classes: tuple[str, ...] | None = None
    mapping: str | None = None


class MineralImages(datasets.GeneratorBasedBuilder):
    """Opaque-mineral photomicrographs from an image folder or a mask set, split without leakage."""

    BUILDER_CONFIG_CLASS = MineralImagesConfig
    BUILDER_CONFIGS = [MineralImagesConfig(name="default")]
    VERSION = datasets.Version("1.0.0")

    def _prepared(self) -> tuple[list, dict[int, str], list[str], Any]:
        if not hasattr(self, "_prep"):
            cfg = self.config
            if not cfg.data_dir:
                raise ValueError("MineralImages needs data_dir=<source folder>")
            opts = {k: getattr(cfg, k) for k in DEFAULTS if hasattr(cfg, k)}
            opts["classes"] = list(cfg.classes) if cfg.classes else None
            opts["progress"] = False
            self._prep = prepare(cfg.data_dir, Path(tempfile.gettempdir()), **opts)
        return self._prep

    def _info(self) -> datasets.DatasetInfo:
        names = self._prepared()[2] if self.config.data_dir else ["unknown"]
        return datasets.DatasetInfo(description=__doc__, features=features(names),
                                    citation="Cai et al. (2024), American Mineralogist 109(12).")

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        records, split_of, names, _ = self._prepared()
        return [datasets.SplitGenerator(name=s, gen_kwargs={"rows": [r for i, r in enumerate(records)
                                                                       if split_of[i] == s], "names": tuple(names)})
                for s in SPLITS]

    def _generate_examples(self, rows: list, names: list[str]):
        yield from enumerate(generate_rows(rows, names, self.config.max_pixels))

    @property
    def report(self) -> dict[str, Any]:
        """The build report (counts, groups, duplicates, skipped files, warnings)."""
        return self._prepared()[3].to_dict()
