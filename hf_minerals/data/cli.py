"""``build-dataset`` command line: parse options, call ``build_dataset``, print where things went."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from hf_minerals.data.assemble import DEFAULTS
from hf_minerals.data.records import DataError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build_dataset.py",
        description="Build a leak-free mineral image data set (DatasetDict + build_report.json + README.md card).",
    )
    p.add_argument("--source", required=True,
                   help="image folder (one sub-folder per mineral, optionally under train/validation/test), "
                        "mask set (images/ + masks/ + mapping file), Hub data set id, or 'synthetic'")
    p.add_argument("--output", required=True, help="output folder (save_to_disk layout)")
    p.add_argument("--patch-size", type=int, default=DEFAULTS["patch_size"],
                   help="mask sets: patch side in px; synthetic: image size (default %(default)s)")
    p.add_argument("--stride", type=int, default=None, help="mask sets: step between patches (default: patch size)")
    p.add_argument("--purity", type=float, default=DEFAULTS["purity"],
                   help="mask sets: minimum area fraction of the dominant ore mineral (default %(default)s)")
    p.add_argument("--mapping", default=None,
                   help="mask sets: code->mineral file (json or 'code name' lines), or 'lumenstone'; "
                        "default: mapping.json/.txt/.csv in the source")
    p.add_argument("--group-regex", default=None,
                   help="folders: regex on file names giving the specimen (first capture group, else the match)")
    p.add_argument("--group-column", default=DEFAULTS["group_column"],
                   help="metadata.csv/metadata.jsonl (or Hub) column holding the group (default %(default)s)")
    p.add_argument("--ratios", default="0.7,0.15,0.15", help="train,validation,test fractions (or 70/15/15)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="split seed (default %(default)s)")
    p.add_argument("--max-pixels", type=int, default=DEFAULTS["max_pixels"],
                   help="refuse images above this many pixels (default %(default)s)")
    p.add_argument("--classes", nargs="+", default=None, help="keep only these minerals")
    p.add_argument("--synthetic-per-class", type=int, default=DEFAULTS["synthetic_per_class"],
                   help="synthetic: images per mineral (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(levelname)s: %(message)s")
    from hf_minerals.data.assemble import build_dataset

    try:
        dsd, report = build_dataset(
            args.source, args.output, patch_size=args.patch_size, stride=args.stride, purity=args.purity,
            mapping=args.mapping, group_regex=args.group_regex, group_column=args.group_column, ratios=args.ratios,
            seed=args.seed, max_pixels=args.max_pixels, classes=args.classes,
            synthetic_per_class=args.synthetic_per_class, progress=not args.no_progress,
        )
    except DataError as exc:
        sys.exit(f"build_dataset: error: {exc}")
    print(f"saved {args.output}  ({', '.join(f'{s}: {len(ds)}' for s, ds in dsd.items())} rows; "
          f"{report['n_skipped']} skipped, {len(report['warnings'])} warning(s); see build_report.json)")
    print(json.dumps({"output": str(args.output), "totals": report["totals"], "skipped": report["n_skipped"],
                      "leakage": report["leakage"]}))


if __name__ == "__main__":
    main()
