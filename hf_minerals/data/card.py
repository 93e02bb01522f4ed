"""Dataset card: the repo-root ``dataset_card.md`` template rendered with the build report's facts.

The YAML front matter carries what the Hub and ``load_dataset`` read (configs, dataset_info with the
class names and split sizes); it is produced with ``datasets``' own helpers so it matches what
``push_to_hub`` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from hf_minerals.data.records import SPLITS
from hf_minerals.templates import template_path as packaged_template

TEMPLATE_NAME = "dataset_card.md"
BASE_TAGS = ["mineralogy", "geology", "ore-microscopy", "reflected-light", "opaque-minerals", "polished-section"]


def template_path() -> Path:
    """The repo-root ``dataset_card.md``, through the one template lookup (``hf_minerals.templates``)."""
    return packaged_template(TEMPLATE_NAME)


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def card_data(dsd: datasets.DatasetDict, report: dict[str, Any], *, pretty_name: str | None = None,
              license: str = "other") -> DatasetCardData:
    """YAML metadata: name, license, task, tags, configs, dataset_info (features with class names, split sizes)."""
    synthetic = bool(report.get("source", {}).get("synthetic"))
    n = sum(len(ds) for ds in dsd.values())
    data = DatasetCardData(
        pretty_name=pretty_name or ("Synthetic opaque-mineral photomicrographs" if synthetic
                                    else "Opaque-mineral photomicrographs"),
        license=license,
        task_categories=["image-classification"],
        tags=BASE_TAGS + (["synthetic"] if synthetic else []),
        size_categories=[_size_category(n)],
    )
    splits = SplitDict()
    for name, ds in dsd.items():
        splits.add(SplitInfo(name=name, num_examples=len(ds), num_bytes=ds.data.nbytes))
    info = DatasetInfo(features=next(iter(dsd.values())).features, splits=splits)
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    MetadataConfigs({"default": {"data_files": [{"split": s, "path": f"data/{s}-*"} for s in dsd]}}).to_dataset_card_data(data)
    return data


def render_card(dsd: datasets.DatasetDict, report: dict[str, Any], *, pretty_name: str | None = None,
                license: str = "other") -> str:
    """The card as README.md text."""
    data = card_data(dsd, report, pretty_name=pretty_name, license=license)
    names = next(iter(dsd.values())).features["label"].names
    counts = report.get("counts", {})
    rows = [{"id": i, "name": name, **{s: counts.get(s, {}).get(name, 0) for s in SPLITS}} for i, name in enumerate(names)]
    groups = {"method": "", "from": "", "total": 0, "per_split": {s: 0 for s in SPLITS}, **report.get("groups", {})}
    card = DatasetCard.from_template(
        data,
        template_path=str(template_path()),
        class_rows=rows,
        totals={s: sum(counts.get(s, {}).values()) for s in SPLITS},
        synthetic=bool(report.get("source", {}).get("synthetic")),
        source={"kind": "?", "source": "?", **report.get("source", {})},
        patches=report.get("patches", {}),
        groups=groups,
        leakage={"groups_in_two_splits": "?", "duplicates_in_two_splits": "?", **report.get("leakage", {})},
        duplicates={"n_sets": 0, "n_extra_copies": 0, **report.get("duplicates", {})},
        n_skipped=len(report.get("skipped", [])),
        skipped_preview=report.get("skipped", [])[:20],
        warnings=report.get("warnings", []),
    )
    return str(card)
