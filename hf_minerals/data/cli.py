"""``build-dataset`` command line: parse options, call ``build_dataset``, print where things went."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hf_minerals.data.assemble import DEFAULTS
from hf_minerals.data.records import DataError


@dataclass
class BuildDatasetArguments:
    """``hf-minerals build-dataset``: a leak-free mineral image data set (DatasetDict + build_report.json + card)."""

    source: str = field(metadata={"help": "image folder (one sub-folder per mineral, optionally under train/validation/"
                                          "test), mask set (images/+masks/, imgs/+masks/, raw/+seg/ or images/+labels/, optionally under "
                                          "train/ val/ test/, + mapping file), Hub data set id, or 'synthetic'"})
    output_dir: str = field(metadata={"help": "output folder (save_to_disk layout, build_report.json, README.md, args.yaml)"})
    patch_size: int = field(default=DEFAULTS["patch_size"],
                            metadata={"help": "mask sets: patch side in px; synthetic: image size"})
    stride: int | None = field(default=None, metadata={"help": "mask sets: step between patches (default: patch size)"})
    purity: float = field(default=DEFAULTS["purity"],
                          metadata={"help": "mask sets: minimum area fraction of the dominant ore mineral"})
    mapping: str | None = field(default=None, metadata={
        "help": "mask sets: code->mineral file (json or 'code name' lines), or 'lumenstone'; "
                "default: mapping.json/.txt/.csv in the source; given with a source that is not a mask set: error"})
    group_regex: str | None = field(default=None, metadata={
        "help": "folders: regex on file names giving the specimen (first capture group, else the match)"})
    group_column: str = field(default=DEFAULTS["group_column"],
                              metadata={"help": "metadata.csv/metadata.jsonl (or Hub) column holding the group "
                                                        "(mask sets: the section / specimen id of each photo)"})
    ratios: str = field(default="0.7,0.15,0.15", metadata={"help": "train,validation,test fractions (or 70/15/15)"})
    seed: int = field(default=DEFAULTS["seed"], metadata={"help": "split seed"})
    max_pixels: int | None = field(default=DEFAULTS["max_pixels"], metadata={
        "help": "refuse images above this many pixels (default: the shared input policy, $HF_MINERALS_MAX_PIXELS "
                "or 50,000,000)"})
    classes: list[str] | None = field(default=None, metadata={"help": "keep only these minerals"})
    synthetic_per_class: int = field(default=DEFAULTS["synthetic_per_class"],
                                     metadata={"help": "synthetic: images per mineral"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bars"})
    quiet: bool = field(default=False, metadata={"help": "only errors on stderr"})


def main(argv: list[str] | None = None) -> None:
    from hf_minerals import reflectance
    from hf_minerals.cli_args import parse_command_line, save_args

    args, refl_args = parse_command_line([BuildDatasetArguments, reflectance.ReflectanceArguments], argv,
                                         prog="hf-minerals build-dataset")
    try:  # the session's dark / white-standard frames: every photo in reflectance before patches are cut
        refl = reflectance.from_args(refl_args)
    except ValueError as exc:
        sys.exit(f"hf-minerals build-dataset: error: {exc}")
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(levelname)s: %(message)s")
    from hf_minerals.data.assemble import build_dataset

    try:
        dsd, report = build_dataset(
            args.source, args.output_dir, patch_size=args.patch_size, stride=args.stride, purity=args.purity,
            mapping=args.mapping, group_regex=args.group_regex, group_column=args.group_column, ratios=args.ratios,
            seed=args.seed, max_pixels=args.max_pixels, classes=args.classes,
            synthetic_per_class=args.synthetic_per_class, progress=not args.no_progress, reflectance=refl,
        )
    except DataError as exc:
        sys.exit(f"hf-minerals build-dataset: error: {exc}")
    save_args(Path(args.output_dir) / "args.yaml", args, refl_args, command="hf-minerals build-dataset")
    print(f"saved {args.output_dir}  ({', '.join(f'{s}: {len(ds)}' for s, ds in dsd.items())} rows; "
          f"{report['n_skipped']} skipped, {len(report['warnings'])} warning(s); see build_report.json)")
    print(json.dumps({"output": str(args.output_dir), "totals": report["totals"], "skipped": report["n_skipped"],
                      "leakage": report["leakage"]}))


if __name__ == "__main__":
    main()
