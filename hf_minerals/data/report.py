"""``build_report.json``: what went in, what came out, and everything skipped or suspicious.

A data set is only as trustworthy as its provenance; the report is the place a reviewer checks
that no file was silently dropped and no specimen leaks between splits.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_minerals.data.records import SPLITS, Record

logger = logging.getLogger(__name__)
REPORT_NAME = "build_report.json"


@dataclass
class BuildReport:
    source: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    groups: dict[str, Any] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=lambda: {"n_sets": 0, "n_extra_copies": 0, "sets": []})
    patches: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    leakage: dict[str, int] = field(default_factory=dict)

    def skip(self, path: str, reason: str) -> None:
        """Record a file that did not become a row; every one is listed, none dropped silently."""
        self.skipped.append({"path": str(path), "reason": reason})
        logger.info("skipped %s: %s", path, reason)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            logger.warning(message)

    def fill_counts(self, records: list[Record], split_of: dict[int, str], class_names: list[str]) -> None:
        """Counts per split x class, groups per split and the leakage check (both must be zero)."""
        self.classes = list(class_names)
        self.counts = {s: {c: 0 for c in class_names} for s in SPLITS}
        groups_by_split: dict[str, set[str]] = {s: set() for s in SPLITS}
        digests_by_split: dict[str, set[str]] = {s: set() for s in SPLITS}
        for i, rec in enumerate(records):
            s = split_of[i]
            self.counts[s][rec.label] += 1
            groups_by_split[s].add(rec.group)
            digests_by_split[s].add(rec.digest)
        group_hits = Counter(g for s in SPLITS for g in groups_by_split[s])
        digest_hits = Counter(d for s in SPLITS for d in digests_by_split[s])
        self.groups["per_split"] = {s: len(groups_by_split[s]) for s in SPLITS}
        self.groups["total"] = len(group_hits)
        self.leakage = {
            "groups_in_two_splits": sum(1 for n in group_hits.values() if n > 1),
            "duplicates_in_two_splits": sum(1 for n in digest_hits.values() if n > 1),
        }

    @property
    def totals(self) -> dict[str, int]:
        return {s: sum(c.values()) for s, c in self.counts.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "options": self.options,
            "classes": self.classes,
            "counts": self.counts,
            "totals": self.totals,
            "groups": self.groups,
            "duplicates": self.duplicates,
            "leakage": self.leakage,
            "patches": self.patches,
            "skipped": self.skipped,
            "n_skipped": len(self.skipped),
            "warnings": self.warnings,
        }

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / REPORT_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return path


def read_report(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / REPORT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build the data set with scripts/build_dataset.py first")
    return json.loads(path.read_text())
