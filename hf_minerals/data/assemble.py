"""``build_dataset``: source -> records -> leak-free splits -> DatasetDict on disk + build_report.json + card."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import datasets

from hf_minerals.data.records import SPLITS, DataError, Record, RecordReader, features
from hf_minerals.data.report import BuildReport
from hf_minerals.data.sources import collect
from hf_minerals.data.splits import assign_splits, parse_ratios
from hf_minerals.inputs import limits as input_limits

DEFAULTS: dict[str, Any] = {
    "patch_size": 224,
    "stride": None,
    "purity": 0.8,
    "group_regex": None,
    "group_column": "group",
    "ratios": (0.7, 0.15, 0.15),
    "seed": 0,
    "max_pixels": None,  # None: the shared input policy's (hf_minerals.inputs)
    "classes": None,
    "mapping": None,
    "synthetic_per_class": 24,
    "progress": True,
    #: ``reflectance.ReflectanceCalibration``: every source photo turned into reflectance before patches are
    #: cut (dark + white-standard frames of the session; docs/data.md). None keeps the raw pixels.
    "reflectance": None,
}


def prepare(source: str | Path, output: str | Path, **opts: Any) -> tuple[list[Record], dict[int, str], list[str],
                                                                          BuildReport]:
    """Read the source and split it, without writing rows: (records, split_of, class names, report)."""
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown build option(s): {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    opts = {**DEFAULTS, **opts}
    opts["max_pixels"] = opts["max_pixels"] or input_limits().max_pixels
    opts["ratios"] = parse_ratios(opts["ratios"])
    report = BuildReport(options={k: v for k, v in opts.items() if k not in ("progress", "reflectance")})
    report.options["reflectance"] = opts["reflectance"].to_dict() if opts["reflectance"] is not None else None
    records = collect(source, Path(output), report, opts)
    class_names = sorted({r.label for r in records})
    if not records:
        raise DataError(f"{source}: no usable images ({len(report.skipped)} skipped; see the reasons in the report)")
    if len(class_names) < 2:
        raise DataError(f"{source}: only one class found ({class_names[0]!r}); a classifier needs at least two "
                        "(one folder per mineral, or masks with at least two ore minerals)")
    if any(r.synthetic for r in records):
        report.source["synthetic"] = True
    split_of = assign_splits(records, report, ratios=opts["ratios"], seed=opts["seed"])
    report.fill_counts(records, split_of, class_names)
    return records, split_of, class_names, report


def generate_rows(records, class_names, max_pixels: int | None = None, reflectance: Any = None):
    """Rows in a stable order (by source, then crop box) so the same seed gives the same files."""
    reader = RecordReader(max_pixels or input_limits().max_pixels, reflectance)
    for rec in sorted(records, key=lambda r: (r.source_path, r.crop_box)):
        yield {
            "image": {"bytes": reader.encode(rec), "path": None},
            "label": list(class_names).index(rec.label),
            "group": rec.group,
            "source_path": rec.source_path,
            "crop_box": list(rec.crop_box),
            "synthetic": bool(rec.synthetic),
            "photo_reference": reader.photo_reference(rec),
        }


def _gen(records, class_names, max_pixels: int, reflectance: Any = None):
    yield from generate_rows(records, class_names, max_pixels, reflectance)


def build_dataset(source: str | Path, output: str | Path, **opts: Any) -> tuple[datasets.DatasetDict, dict]:
    """Build, save (``save_to_disk``) and report a mineral image data set; see docs/data.md for options."""
    from hf_minerals.data.card import render_card

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    records, split_of, class_names, report = prepare(source, output, **opts)
    max_pixels = report.options["max_pixels"]
    reflectance = opts.get("reflectance")
    feats = features(class_names)
    with tempfile.TemporaryDirectory(prefix="hfm-build-") as cache:
        parts = {}
        for split in SPLITS:
            rows = [r for i, r in enumerate(records) if split_of[i] == split]
            parts[split] = datasets.Dataset.from_generator(
                _gen, features=feats, cache_dir=cache, keep_in_memory=False,
                gen_kwargs={"records": tuple(rows), "class_names": tuple(class_names), "max_pixels": max_pixels,
                            "reflectance": reflectance},
                split=datasets.NamedSplit(split),
            ) if rows else datasets.Dataset.from_dict({k: [] for k in feats}, features=feats,
                                                      split=datasets.NamedSplit(split))
        dsd = datasets.DatasetDict(parts)
        for split in SPLITS:  # save_to_disk leaves other files in output alone; old split folders are replaced
            shutil.rmtree(output / split, ignore_errors=True)
        dsd.save_to_disk(str(output), num_shards={s: 1 for s, ds in dsd.items() if len(ds) == 0} or None)
    report.write(output)
    (output / "README.md").write_text(render_card(dsd, report.to_dict()))
    return datasets.load_from_disk(str(output)), report.to_dict()


__all__ = ["DEFAULTS", "DataError", "build_dataset", "generate_rows", "prepare"]
