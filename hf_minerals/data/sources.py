"""Where rows come from: an image folder, a mask-annotated set, a Hub data set id, or ``synthetic``.

``collect`` looks at ``source`` and hands it to the matching reader; every reader returns ``Record``s
and fills the report (skips with reasons, warnings, where groups came from).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hf_minerals.data.folders import scan_folder
from hf_minerals.data.masks import is_mask_source, scan_masks
from hf_minerals.data.records import SPLIT_ALIASES, DataError, Record, near_hash, pixel_digest
from hf_minerals.data.report import BuildReport
from hf_minerals.imageio import ImageLoadError, load_image

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def source_kind(source: str | Path) -> str:
    """'synthetic', 'masks', 'folder' or 'hub'."""
    text = str(source)
    if text == "synthetic":
        return "synthetic"
    path = Path(text).expanduser()
    if path.is_dir():
        return "masks" if is_mask_source(path) else "folder"
    if path.exists():
        raise DataError(f"--source {text} is a file; give a folder, a Hub data set id or 'synthetic'")
    if HUB_ID.match(text):
        return "hub"
    raise DataError(f"--source {text}: no such folder, and not a Hub data set id (namespace/name) or 'synthetic'")


def make_synthetic(output: Path, *, per_class: int, size: int, seed: int, classes: list[str] | None,
                   progress: bool = True) -> Path:
    """Render the synthetic image folder (labelled synthetic everywhere) into ``output`` (replaced if present)."""
    from hf_minerals.minerals import PAPER_MINERALS
    from hf_minerals.synthetic import write_image_folder

    try:
        return Path(write_image_folder(output, classes=tuple(classes or PAPER_MINERALS), per_class=per_class,
                                       size=size, seed=seed, overwrite=True, progress=progress))
    except ValueError as exc:
        raise DataError(f"synthetic source: {exc}") from exc


def scan_hub(repo_id: str, report: BuildReport, *, classes: list[str] | None, group_column: str, max_pixels: int,
             revision: str | None = None, progress: bool = True) -> list[Record]:
    """Rows of a Hub image-classification data set (real ``load_dataset``; needs the Hub)."""
    import datasets

    dsd = datasets.load_dataset(repo_id, revision=revision)
    if isinstance(dsd, datasets.Dataset):
        dsd = datasets.DatasetDict({"train": dsd})
    feats = next(iter(dsd.values())).features
    image_col = next((k for k, f in feats.items() if isinstance(f, datasets.Image)), None)
    label_col = next((k for k, f in feats.items() if isinstance(f, datasets.ClassLabel)), None)
    label_col = label_col or ("label" if "label" in feats else None)
    if image_col is None or label_col is None:
        raise DataError(f"{repo_id}: needs an Image column and a label column; found {list(feats)}")
    if group_column not in feats:
        report.warn(f"{repo_id} has no '{group_column}' column: each row is its own group, so leakage between "
                    "crops of one specimen across splits cannot be ruled out")
    wanted = {c.lower() for c in classes} if classes else None
    records: list[Record] = []
    for split, ds in dsd.items():
        hint = SPLIT_ALIASES.get(split.lower())
        if hint is None:
            report.warn(f"{repo_id}: split '{split}' is not train/validation/test; its rows are re-split")
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
        names = ds.features[label_col].names if isinstance(ds.features[label_col], datasets.ClassLabel) else None
        for i, row in enumerate(tqdm(ds, desc=f"reading {split}", unit="img", disable=not progress)):
            where = f"hf://datasets/{repo_id}/{split}/{i}"
            label = str(names[row[label_col]] if names else row[label_col]).strip().lower()
            if wanted is not None and label not in wanted:
                continue
            cell: dict[str, Any] = row[image_col] or {}
            data = cell.get("bytes") or (Path(cell["path"]).read_bytes() if cell.get("path") else b"")
            try:
                img = load_image(data, max_pixels=max_pixels)
            except ImageLoadError as exc:
                report.skip(where, exc.reason)
                continue
            group = str(row[group_column]) if row.get(group_column) not in (None, "") else where
            records.append(Record(label=label, group=group, source_path=where, digest=pixel_digest(img), near_hash=near_hash(img),
                                  synthetic=bool(row.get("synthetic", False)), split_hint=hint, data=data))
    report.groups["from"] = f"column '{group_column}'" if group_column in feats else "row (no group information)"
    return records


def collect(source: str | Path, output: Path, report: BuildReport, opts: dict[str, Any]) -> list[Record]:
    """Records from any source kind; ``opts`` are ``build_dataset``'s keyword options."""
    kind = source_kind(source)
    if opts.get("mapping") and kind != "masks":
        from hf_minerals.data.masks import LAYOUTS

        raise DataError(
            f"--mapping {opts['mapping']} was given, but {source} is not read as a mask set (it is a {kind} source). "
            f"A mask set needs one of the layouts {LAYOUTS}; fix the layout, or drop --mapping for an image folder."
        )
    common = {"classes": opts["classes"], "max_pixels": opts["max_pixels"], "progress": opts["progress"]}
    report.source = {"kind": kind, "source": str(source), "synthetic": kind == "synthetic"}
    if kind == "synthetic":
        folder = make_synthetic(output / "synthetic_source", per_class=opts["synthetic_per_class"],
                                size=opts["patch_size"], seed=opts["seed"], classes=opts["classes"],
                                progress=opts["progress"])
        report.source["generated_folder"] = folder.name
        report.warn("SYNTHETIC data: rendered by hf_minerals.synthetic, not photographed")
        return scan_folder(folder, report, group_regex=None, group_column=opts["group_column"], synthetic=True,
                           **common)
    if kind == "hub":
        return scan_hub(str(source), report, group_column=opts["group_column"], **common)
    root = Path(source).expanduser()
    if kind == "masks":
        return scan_masks(root, report, mapping=opts["mapping"], patch_size=opts["patch_size"], stride=opts["stride"],
                          purity=opts["purity"], group_column=opts["group_column"], **common)
    return scan_folder(root, report, group_regex=opts["group_regex"], group_column=opts["group_column"], **common)
