"""Mask-annotated source (LumenStone format): photomicrographs + same-sized 8-bit label PNGs + code->mineral map.

Each photomicrograph is cut into patches; a patch becomes a row when its most abundant *ore* mineral
covers at least ``purity`` of the patch. Background phases (gangue, resin, pits...) never become labels.
The group of every patch is its photomicrograph, so patches of one photo never straddle two splits.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from hf_minerals.data.folders import read_metadata
from hf_minerals.data.records import SPLIT_ALIASES, DataError, Record, near_hash, pixel_digest
from hf_minerals.data.report import BuildReport
from hf_minerals.imageio import ImageLoadError, is_image_file, load_image
from hf_minerals.inputs import path_problem, scan_paths
from hf_minerals.minerals import BACKGROUND_PHASES, MASK_CODES, suggest_mineral

#: Published mask-set layouts: images/ + masks/, imgs/ + masks/, raw/ + seg/, images/ + labels/ (any pairing),
#: each optionally under train/ val/ test/.
IMAGE_DIRS = ("images", "imgs", "img", "photos", "raw")
MASK_DIRS = ("masks", "mask", "labels", "annotations", "seg", "segmentation")
LAYOUTS = "images/ + masks/, imgs/ + masks/, raw/ + seg/ or images/ + labels/ (optionally under train/ val/ test/)"
MAPPING_NAMES = ("mapping.json", "mapping.txt", "mapping.csv", "classes.json", "classes.txt", "classes.csv",
                 "codes.json", "codes.txt", "codes.csv")


def _find_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_dir() and p.name.lower() in names:
            return p
    return None


def is_mask_source(root: Path) -> bool:
    """True for ``root/{images,masks}`` or ``root/<split>/{images,masks}``."""
    if _find_dir(root, IMAGE_DIRS) and _find_dir(root, MASK_DIRS):
        return True
    return any(_find_dir(p, IMAGE_DIRS) and _find_dir(p, MASK_DIRS)
               for p in root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_ALIASES)


def read_mapping(path: str | Path) -> dict[int, str]:
    """Parse ``{code: name}`` JSON or ``code name`` / ``code,name`` lines; ``lumenstone`` = built-in codes."""
    if str(path).lower() == "lumenstone":
        return dict(MASK_CODES)
    path = Path(path)
    text = path.read_text()
    mapping: dict[int, str] = {}
    if path.suffix.lower() == ".json":
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected a JSON object {{code: mineral}}")
        for k, v in raw.items():
            if isinstance(v, int) and not str(k).strip().isdigit():  # {name: code} written the other way round
                k, v = v, k
            mapping[int(k)] = str(v)
    else:
        rows = csv.reader(text.splitlines()) if path.suffix.lower() == ".csv" else (
            re.split(r"[\s,;:=]+", line.strip(), maxsplit=1) for line in text.splitlines())
        for row in rows:
            row = [c.strip() for c in row if c.strip()]
            if len(row) < 2 or row[0].startswith("#") or not row[0].isdigit():
                continue  # comments, headers, blank lines
            mapping[int(row[0])] = row[1]
    if not mapping:
        raise DataError(f"{path}: no 'code name' entries found")
    return {code: name.strip().lower() for code, name in mapping.items()}


def find_mapping(root: Path) -> Path:
    for name in MAPPING_NAMES:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root}: a mask set needs a code->mineral mapping file ({', '.join(MAPPING_NAMES[:3])}); "
                    "pass --mapping PATH, or --mapping lumenstone for the LumenStone codes")


def _read_mask(path: Path, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """The label array, or ``ImageLoadError`` with a reason (wrong mode/size, corrupt...)."""
    problem = path_problem(path)
    if problem:
        raise ImageLoadError(f"label mask: {problem}")
    try:
        with Image.open(path) as m:
            if m.size[0] * m.size[1] > max_pixels:
                raise ImageLoadError(f"label mask has too many pixels ({m.size[0]}x{m.size[1]})")
            if m.mode not in ("L", "P", "I;16", "I"):
                raise ImageLoadError(f"label mask is not single-channel 8-bit (mode {m.mode})")
            arr = np.asarray(m)
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a skip with its reason
        raise ImageLoadError(f"unreadable label mask ({exc})") from exc
    if (arr.shape[1], arr.shape[0]) != size:
        raise ImageLoadError(f"label mask size {arr.shape[1]}x{arr.shape[0]} differs from image size {size[0]}x{size[1]}")
    if arr.max(initial=0) > 255:
        raise ImageLoadError("label mask has codes above 255 (not an 8-bit label image)")
    return arr.astype(np.uint8)


def photo_groups(root: Path, group_column: str) -> dict[Path, str]:
    """Section / specimen id of each photo from ``metadata.csv``/``.jsonl`` (``file_name`` + ``group_column``),
    in the root, a split folder or an image folder; ``file_name`` is relative to the metadata file."""
    folders = [root] + [p for p in sorted(root.rglob("*")) if p.is_dir()]
    rows: dict[Path, dict] = {}
    for folder in folders:
        rows.update(read_metadata(folder))
    return {path: str(row[group_column]) for path, row in rows.items() if row.get(group_column) not in (None, "")}


def _pairs(root: Path, report: BuildReport) -> list[tuple[str | None, Path, Path | None]]:
    folders: list[tuple[str | None, Path]] = [(None, root)]
    split_dirs = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in SPLIT_ALIASES]
    if split_dirs and not _find_dir(root, IMAGE_DIRS):
        folders = [(SPLIT_ALIASES[p.name.lower()], p) for p in split_dirs]
    out = []
    for hint, folder in folders:
        img_dir, mask_dir = _find_dir(folder, IMAGE_DIRS), _find_dir(folder, MASK_DIRS)
        if img_dir is None or mask_dir is None:
            raise DataError(f"{folder}: expected a mask-set layout: {LAYOUTS}")
        masks = {p.stem: p for p in sorted(mask_dir.rglob("*")) if p.is_file() and is_image_file(p)}
        used = set()
        scan = scan_paths([img_dir])  # unreadable, links, pipes, folders named x.png: listed, never fatal
        for path, reason in scan.skipped:
            report.skip(str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path, reason)
        for p in scan.files:
            mask = masks.get(p.stem)
            used.add(p.stem)
            out.append((hint, p, mask))
        for stem, m in masks.items():
            if stem not in used:
                report.skip(str(m.relative_to(root)), "label mask without a photomicrograph of the same name")
    return out


def scan_masks(
    root: str | Path,
    report: BuildReport,
    *,
    mapping: str | Path | None = None,
    patch_size: int = 224,
    stride: int | None = None,
    purity: float = 0.8,
    classes: list[str] | None = None,
    max_pixels: int,
    synthetic: bool = False,
    progress: bool = True,
    group_column: str = "group",
) -> list[Record]:
    """Describe every pure-enough patch of every photomicrograph under ``root``.

    A patch's group is its photo's section / specimen id from a metadata file (``group_column``), else the photo.
    """
    root = Path(root).resolve()
    if not 0.0 < purity <= 1.0:
        raise DataError(f"purity must be in (0, 1], got {purity}")
    stride = stride or patch_size
    mapping_path = mapping or find_mapping(root)
    codes = read_mapping(mapping_path)
    for name in set(codes.values()) - BACKGROUND_PHASES:
        if (likely := suggest_mineral(name)) is not None:
            report.warn(f"mapping name '{name}' looks like a misspelling of '{likely}'")
    wanted = {c.lower() for c in classes} if classes else None
    ore = np.zeros(256, bool)
    for code, name in codes.items():
        ore[code] = name not in BACKGROUND_PHASES and (wanted is None or name in wanted)
    shown = Path(mapping_path).name if Path(mapping_path).is_file() else str(mapping_path)
    report.source["mapping"] = {"file": shown, "codes": {str(k): v for k, v in sorted(codes.items())}}
    sections = photo_groups(root, group_column)
    stats = {"photomicrographs": 0, "kept": 0, "rejected_background": 0, "rejected_impure": 0}
    records: list[Record] = []
    for hint, img_path, mask_path in tqdm(_pairs(root, report), desc="cutting patches", unit="photo",
                                          disable=not progress):
        rel = str(img_path.relative_to(root))
        if mask_path is None:
            report.skip(rel, "no label mask with the same name")
            continue
        try:
            img = load_image(img_path, max_pixels=max_pixels)
            mask = _read_mask(mask_path, img.size, max_pixels)
        except ImageLoadError as exc:
            report.skip(rel, exc.reason)
            continue
        unknown = sorted(set(np.unique(mask).tolist()) - set(codes))
        if unknown:
            raise DataError(f"{mask_path}: mask code(s) {unknown} are not in the mapping file {mapping_path} "
                            f"(known: {sorted(codes)}); add a 'code mineral' line for each")
        if img.size[0] < patch_size or img.size[1] < patch_size:
            report.skip(rel, f"smaller than the patch size {patch_size}")
            continue
        stats["photomicrographs"] += 1
        arr = np.asarray(img)
        photo_hash = near_hash(img)
        group = sections.get(img_path.resolve(), rel)
        for y in range(0, img.size[1] - patch_size + 1, stride):
            for x in range(0, img.size[0] - patch_size + 1, stride):
                window = mask[y:y + patch_size, x:x + patch_size]
                counts = np.bincount(window.ravel(), minlength=256) * ore
                code = int(counts.argmax())
                if counts[code] == 0:
                    stats["rejected_background"] += 1
                    continue
                if counts[code] < purity * window.size:
                    stats["rejected_impure"] += 1
                    continue
                box = [x, y, x + patch_size, y + patch_size]
                patch = Image.fromarray(np.ascontiguousarray(arr[y:y + patch_size, x:x + patch_size]), "RGB")
                records.append(Record(label=codes[code], group=group, source_path=rel, digest=pixel_digest(patch),
                                      crop_box=box, synthetic=synthetic or img_path.name.startswith("synthetic_"),
                                      split_hint=hint, path=str(img_path), near_hash=photo_hash))
                stats["kept"] += 1
    report.patches = {**stats, "patch_size": patch_size, "stride": stride, "purity": purity}
    if sections:
        report.groups["from"] = f"metadata column '{group_column}' (section / specimen id per photo; mask source)"
    else:
        report.groups["from"] = "photomicrograph (mask source)"
        report.warn(f"mask set without a metadata file giving each photo's '{group_column}' (section / specimen): "
                    "each photo is its own group, so two photos of one section may land in different splits")
    return records
