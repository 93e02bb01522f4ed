"""Leak-free splits: stratified by label, grouped by specimen, duplicates kept together, seeded.

Why not a plain random split: crops of one photomicrograph (or one specimen photographed twice) are
near-copies; one in train and one in test turns memorisation into "accuracy". So the unit of
assignment is a *unit* = a group, merged with every group that shares an exact duplicate image.
Units are assigned greedily, biggest first, to the split whose per-class quota is furthest from full,
after first giving every split one unit of every class that has enough units.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from hf_minerals.data.records import SPLITS, DataError, Record
from hf_minerals.data.report import BuildReport


def parse_ratios(text: str | tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """'70/15/15', '0.7,0.15,0.15' or a 3-sequence -> fractions summing to 1."""
    parts = [float(p) for p in text.replace("/", ",").split(",")] if isinstance(text, str) else [float(p) for p in text]
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0 or parts[0] == 0:
        raise DataError(f"ratios must be three non-negative numbers train,validation,test with train > 0; got {text!r}")
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _units(records: list[Record], report: BuildReport) -> dict[str, list[int]]:
    """Merge groups that share a duplicate image; report the duplicate sets."""
    uf = _UnionFind()
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        uf.find(rec.group)
        by_digest[rec.digest].append(i)
    dup_sets = [idx for idx in by_digest.values() if len(idx) > 1]
    for idx in dup_sets:
        for j in idx[1:]:
            uf.union(records[idx[0]].group, records[j].group)
        labels = sorted({records[j].label for j in idx})
        if len(labels) > 1:
            report.warn(f"identical image labelled {labels}: {[records[j].source_path for j in idx]}")
    near_sets = _near_duplicates(records, uf, report)
    report.duplicates = {
        "n_sets": len(dup_sets),
        "n_extra_copies": sum(len(idx) - 1 for idx in dup_sets),
        "sets": [[records[j].source_path + (f" {records[j].crop_box}" if records[j].crop_box else "") for j in idx]
                 for idx in dup_sets],
        "near_duplicate_sets": near_sets,
        "policy": "kept, all copies in one split (their groups are merged); near-duplicates (re-saved or rescaled "
                  f"copies: dHash within {NEAR_BITS} bits and mean colour within {NEAR_COLOUR} levels) likewise",
    }
    units: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        units[uf.find(rec.group)].append(i)
    return units


NEAR_BITS = 4
NEAR_COLOUR = 12


def _near_duplicates(records: list[Record], uf: _UnionFind, report: BuildReport) -> list[list[str]]:
    """Union the groups of photos whose perceptual hashes match (``records.near_hash``); return the sets found."""
    import numpy as np

    first: dict[str, int] = {}  # one record per source photo
    for i, rec in enumerate(records):
        if rec.near_hash is not None:
            first.setdefault(rec.source_path, i)
    idx = list(first.values())
    if len(idx) < 2:
        return []
    hashes = np.array([records[i].near_hash[0] for i in idx], dtype=np.uint64)
    colours = np.array([records[i].near_hash[1:] for i in idx], dtype=np.int32)
    sets: list[list[str]] = []
    for a in range(len(idx) - 1):
        bits = np.bitwise_count(hashes[a] ^ hashes[a + 1 :])
        close = np.flatnonzero((bits <= NEAR_BITS) & (np.abs(colours[a + 1 :] - colours[a]).max(1) <= NEAR_COLOUR))
        for b in close + a + 1:
            ra, rb = records[idx[a]], records[idx[b]]
            if uf.find(ra.group) != uf.find(rb.group):
                sets.append([ra.source_path, rb.source_path])
                if ra.label != rb.label and not ra.crop_box:
                    report.warn(f"near-identical images labelled {sorted({ra.label, rb.label})}: "
                                f"{[ra.source_path, rb.source_path]}")
            uf.union(ra.group, rb.group)
    return sets


def _greedy(units: dict[str, list[int]], records: list[Record], names: list[str], ratios: list[float],
            seed: int) -> dict[str, str]:
    """Assign units to ``names`` splits with target ``ratios``; returns unit -> split."""
    rng = random.Random(seed)
    keys = sorted(units)
    rng.shuffle(keys)
    rank = {k: i for i, k in enumerate(keys)}
    comp = {k: Counter(records[i].label for i in units[k]) for k in keys}
    size = {k: len(units[k]) for k in keys}
    totals = Counter(records[i].label for k in keys for i in units[k])
    target = {s: {lab: r * n for lab, n in totals.items()} for s, r in zip(names, ratios)}
    have: dict[str, Counter] = {s: Counter() for s in names}
    out: dict[str, str] = {}

    def put(k: str, s: str) -> None:
        out[k] = s
        have[s].update(comp[k])

    # 1. Coverage: one unit of each class per split (rarest classes first, smallest units to small splits).
    order = [s for s in ("train", "test", "validation") if s in names and ratios[names.index(s)] > 0]
    holders = {lab: [k for k in keys if comp[k][lab]] for lab in totals}
    for lab in sorted(totals, key=lambda c: (len(holders[c]), c)):
        for s in order:
            if have[s][lab]:
                continue
            free = [k for k in holders[lab] if k not in out]
            if free:  # prefer units that bring classes this split still lacks, then small ones (not for train)
                def pick(k: str, s: str = s) -> tuple[int, int, int]:
                    gain = sum(1 for c in comp[k] if not have[s][c])
                    return (-gain, size[k] if s != "train" else 0, rank[k])

                put(min(free, key=pick), s)
    # 2. The rest, biggest first: to the split with the largest unmet quota for this unit's classes.
    open_splits = [s for s, r in zip(names, ratios) if r > 0]
    left = {s: sum(target[s].values()) - sum(have[s].values()) for s in names}
    for k in sorted((k for k in keys if k not in out), key=lambda k: (-size[k], rank[k])):
        def score(s: str, k: str = k) -> tuple[float, float]:
            return (sum(n * (target[s][lab] - have[s][lab]) for lab, n in comp[k].items()), left[s])

        best = max(open_splits, key=score)
        put(k, best)
        left[best] -= size[k]
    return out


def _quality(assign: dict[str, str], units: dict[str, list[int]], records: list[Record], names: list[str],
             ratios: list[float]) -> tuple[int, float]:
    """(classes covered over all open splits, minus the relative size error): higher is better."""
    seen = {(s, records[i].label) for k, s in assign.items() for i in units[k]}
    n = sum(len(units[k]) for k in assign) or 1
    sizes = Counter()
    for k, s in assign.items():
        sizes[s] += len(units[k])
    return (len(seen), -sum(abs(sizes[s] / n - r) for s, r in zip(names, ratios)))


def _best_split(units: dict[str, list[int]], records: list[Record], names: list[str], ratios: list[float],
                seed: int, attempts: int = 8) -> dict[str, str]:
    """The best of a few seeded greedy passes (the greedy can strand a class; a reshuffle often fixes it)."""
    attempts = attempts if len(units) <= 20_000 else 1
    rng = random.Random(seed)
    tries = [_greedy(units, records, names, ratios, rng.randrange(2**31)) for _ in range(attempts)]
    return max(tries, key=lambda a: _quality(a, units, records, names, ratios))


def assign_splits(records: list[Record], report: BuildReport, *, ratios=(0.7, 0.15, 0.15),
                  seed: int = 0) -> dict[int, str]:
    """Record index -> split name. Honours pre-split sources, carving missing splits out of train."""
    ratios = parse_ratios(ratios)
    units = _units(records, report)
    unit_split: dict[str, str] = {}
    hinted = any(r.split_hint for r in records)
    if hinted:
        moved = 0
        for k, idx in units.items():
            hints = Counter(records[i].split_hint or "train" for i in idx)
            best = max(SPLITS, key=lambda s: (hints[s], -SPLITS.index(s)))
            moved += len(idx) - hints[best]
            unit_split[k] = best
        if moved:
            report.warn(f"{moved} image(s) moved between the given splits so that no group or duplicate spans two splits")
        present = {s for s in unit_split.values()}
        missing = [s for s in SPLITS if s not in present and ratios[SPLITS.index(s)] > 0]
        if "train" not in present:
            raise DataError("a pre-split source needs a train folder/split")
        if missing:
            report.warn(f"source has no {missing} split: carved out of train by the grouped stratified splitter")
            names = ["train", *missing]
            sub = [ratios[0], *(ratios[SPLITS.index(s)] for s in missing)]
            train_units = {k: units[k] for k, s in unit_split.items() if s == "train"}
            unit_split.update(_best_split(train_units, records, names, sub, seed))
        report.groups["method"] = "given splits (folders/Hub splits), groups and duplicates kept together"
    else:
        unit_split = _best_split(units, records, list(SPLITS), list(ratios), seed)
        report.groups["method"] = (f"grouped stratified greedy split, ratios {[round(r, 4) for r in ratios]}, "
                                   f"seed {seed}; duplicates merge their groups")
    report.groups["units"] = len(units)
    split_of = {i: unit_split[k] for k, idx in units.items() for i in idx}
    labels = sorted({r.label for r in records})
    for lab in labels:
        absent = [s for s in SPLITS if ratios[SPLITS.index(s)] > 0
                  and not any(records[i].label == lab for i, s2 in split_of.items() if s2 == s)]
        if absent:
            n_units = sum(1 for idx in units.values() if any(records[i].label == lab for i in idx))
            report.warn(f"class '{lab}' is missing from split(s) {absent}: only {n_units} independent group(s)")
    return split_of
