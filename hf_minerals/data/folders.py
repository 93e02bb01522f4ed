"""Image-folder source: ``root/<mineral>/*.jpg`` (optionally under ``train/ validation/ test/``).

Groups come from an imagefolder-style ``metadata.csv``/``metadata.jsonl`` (``file_name`` + a group
column), from ``--group_regex`` on file names, or else each file is its own group (with a warning,
because crops of one specimen could then land in two splits).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hf_minerals.data.records import SPLIT_ALIASES, DataError, Record, near_hash, pixel_digest
from hf_minerals.data.report import BuildReport
from hf_minerals.imageio import IMAGE_EXTENSIONS, ImageLoadError, is_image_file, load_image
from hf_minerals.inputs import scan_paths
from hf_minerals.minerals import suggest_mineral

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
#: Folders that sit next to class folders but are not classes (the synthetic generator writes masks/).
NOT_CLASS_FOLDERS = frozenset({"masks", "mask", "labels", "annotations"})


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y")


def read_metadata(folder: Path) -> dict[Path, dict[str, Any]]:
    """Rows of ``metadata.csv``/``metadata.jsonl`` in ``folder``, keyed by the resolved image path."""
    rows: dict[Path, dict[str, Any]] = {}
    for name in METADATA_NAMES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".csv"):
            with path.open(newline="") as f:
                items = list(csv.DictReader(f))
        else:
            items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in items:
            if "file_name" not in row:
                raise DataError(f"{path}: every row needs a 'file_name' column (imagefolder metadata convention)")
            rows[(folder / row["file_name"]).resolve()] = row
    return rows


#: A single-channel image with at most this many distinct values is a label-code mask, not a photograph.
MAX_CODES = 32


def is_label_code_image(path: Path) -> bool:
    """Single-channel (L/P/I) with few distinct values: the codes of a segmentation mask."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("1", "L", "P", "I", "I;16"):
                return False
            return len(np.unique(np.asarray(im))) <= MAX_CODES
    except Exception:  # noqa: BLE001 - unreadable files are reported later, with their reason
        return False


def refuse_label_codes(cdir: Path, images: list[Path], sample: int = 3) -> None:
    """A "class" folder of label-code images is a mask folder in the wrong place: stop, and say how to build it."""
    probe = images[:sample]
    if probe and sum(map(is_label_code_image, probe)) * 2 > len(probe):
        raise DataError(
            f"folder '{cdir.name}/' holds single-channel label-code images ({probe[0].name}: <= {MAX_CODES} distinct "
            "values), i.e. segmentation masks, not photomicrographs; they are not used as a mineral class. For a mask "
            "set, arrange photos and masks as images/ + masks/ (or imgs/ + masks/, raw/ + seg/, images/ + labels/, "
            "optionally under train/ val/ test/) and pass --mapping (docs/data.md)."
        )


def _rel(path: str | Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _class_dirs(folder: Path, report: BuildReport) -> list[Path]:
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name.lower() in NOT_CLASS_FOLDERS:
            report.warn(f"folder '{d.name}/' in {folder.name}/ ignored: label masks, not a class")
            continue
        out.append(d)
    return out


def _layout(root: Path, report: BuildReport) -> list[tuple[str | None, Path]]:
    """(split hint, folder holding class folders) pairs; pre-split when split-named folders exist."""
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_ALIASES]
    if not split_dirs:
        return [(None, root)]
    others = [p.name for p in subdirs if p not in split_dirs and p.name.lower() not in NOT_CLASS_FOLDERS]
    if others:
        report.warn(f"source is pre-split, so folders outside the split folders are ignored: {sorted(others)}")
    hints = [SPLIT_ALIASES[p.name.lower()] for p in split_dirs]
    if len(set(hints)) != len(hints):
        raise DataError(f"{root}: two folders name the same split ({sorted(p.name for p in split_dirs)})")
    return [(SPLIT_ALIASES[p.name.lower()], p) for p in sorted(split_dirs)]


def scan_folder(
    root: str | Path,
    report: BuildReport,
    *,
    classes: list[str] | None = None,
    group_regex: str | None = None,
    group_column: str = "group",
    max_pixels: int,
    synthetic: bool = False,
    progress: bool = True,
) -> list[Record]:
    """Describe every usable image under ``root``; list every other file in the report with its reason."""
    root = Path(root).resolve()
    pattern = re.compile(group_regex) if group_regex else None
    wanted = {c.lower() for c in classes} if classes else None
    metadata = read_metadata(root)
    jobs: list[tuple[str | None, str, Path]] = []  # (split, label, file)
    seen_labels: set[str] = set()
    for hint, folder in _layout(root, report):
        metadata.update(read_metadata(folder))
        for image in sorted(p for p in folder.iterdir() if is_image_file(p) and not p.is_dir()):
            report.skip(str(image.relative_to(root)), "image not inside a class folder")
        for cdir in _class_dirs(folder, report):
            label = cdir.name.strip().lower()
            if wanted is not None and label not in wanted:
                continue
            seen_labels.add(label)
            if (likely := suggest_mineral(label)) is not None:
                report.warn(f"class folder '{cdir.name}' looks like a misspelling of '{likely}'; "
                            f"it is kept as its own class '{label}' — rename the folder if it is {likely}")
            scan = scan_paths([cdir])  # unreadable, links, pipes, folders named x.png: listed, never fatal
            for path, reason in scan.skipped:
                report.skip(_rel(path, root), reason)
            images = scan.files
            if not images and any(Path(p) == cdir for p, _ in scan.skipped):
                seen_labels.discard(label)
                report.warn(f"class folder '{cdir.name}' cannot be read; the class is left out")
                continue
            if not images and not any(is_image_file(p) for p, _ in scan.skipped):
                raise DataError(f"class folder '{cdir}' has no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                                "add images or remove the folder")
            refuse_label_codes(cdir, [Path(p) for p in images])
            jobs += [(hint, label, p) for p in images]
    if wanted is not None and (missing := wanted - seen_labels):
        raise DataError(f"--classes names classes with no folder under {root}: {sorted(missing)}")

    has_groups = bool(metadata) and any(group_column in row for row in metadata.values())
    if metadata and not has_groups and not pattern:
        report.warn(f"metadata file has no '{group_column}' column; see --group_column")
    unmatched = no_group = 0
    records: list[Record] = []
    for hint, label, path in tqdm(jobs, desc="reading images", unit="img", disable=not progress):
        rel = str(path.relative_to(root))
        notes: list[str] = []
        try:
            img = load_image(path, max_pixels=max_pixels, notes=notes)
        except ImageLoadError as exc:
            report.skip(rel, exc.reason)
            continue
        for note in notes:
            report.warn(f"{rel}: {note}")
        row = metadata.get(path.resolve(), {})
        if has_groups and row.get(group_column) not in (None, ""):
            group = str(row[group_column])
        elif pattern:
            m = pattern.search(path.name)
            if m is None:
                unmatched += 1
                group = rel
            else:
                group = m.group(1) if m.groups() else m.group(0)
        else:
            group = rel
            no_group += has_groups
        is_synth = synthetic or _truthy(row.get("synthetic", False)) or path.name.startswith("synthetic_")
        records.append(Record(label=label, group=group, source_path=rel, digest=pixel_digest(img),
                              synthetic=is_synth, split_hint=hint, path=str(path), near_hash=near_hash(img)))
    empty = sorted(seen_labels - {r.label for r in records})
    if empty:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in report.skipped
                            if {p.lower() for p in Path(s["path"]).parts[:-1]} & set(empty))
        raise DataError(f"class(es) {empty} have no usable image, every file was skipped ({reasons[:500]})")
    if pattern:
        report.groups["from"] = f"--group_regex {group_regex}"
        if unmatched:
            report.warn(f"--group_regex matched no group in {unmatched} file name(s); each of those is its own group")
    elif has_groups:
        report.groups["from"] = f"metadata column '{group_column}'"
        if no_group:
            report.warn(f"{no_group} image(s) have no '{group_column}' in the metadata; each of those is its own group")
    else:
        report.groups["from"] = "file (no group information)"
        report.warn("no group information (metadata.csv/metadata.jsonl group column or --group_regex): each file is "
                    "its own group, so leakage between crops of one specimen across splits cannot be ruled out")
    return records
