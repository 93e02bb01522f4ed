"""``make quickstart``: the whole job offline in a few minutes on 2 CPU cores.

SYNTHETIC data set (``hf_minerals.data.build_dataset("synthetic")``) -> compact Swin from a config,
random init (``recipes/quickstart.yaml``) -> Trainer -> test-split report -> model card. Leaves
``outputs/quickstart/{dataset,model,eval}``; ``pipeline("image-classification", model=
"outputs/quickstart/model")`` loads the result. The scores say the pipeline works, nothing about
real minerals.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path("outputs/quickstart")
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "quickstart.yaml"
DATASET_OPTIONS = {"synthetic_per_class": 200, "patch_size": 96, "seed": 0}


def ensure_dataset(folder: Path, options: dict[str, Any], rebuild: bool = False) -> Path:
    """Build the synthetic DatasetDict once; reuse it when it was built with the same options."""
    from .data import build_dataset, read_report

    if folder.is_dir() and (folder / "dataset_dict.json").exists() and not rebuild:
        try:
            built = read_report(folder).get("options", {})
        except (OSError, ValueError):
            built = {}
        if all(built.get(k) == v for k, v in options.items()):
            print(f"reusing the synthetic data set in {folder}/ (--rebuild to make it again)")
            return folder
    print(f"building a SYNTHETIC data set in {folder}/ ({options['synthetic_per_class']} scenes per mineral) ...")
    build_dataset("synthetic", folder, **options)
    return folder


@dataclass
class QuickstartArguments:
    """``hf-minerals quickstart``; any training flag (``--max_steps 5``) overrides ``--recipe``."""

    per_class: int = field(default=DATASET_OPTIONS["synthetic_per_class"], metadata={"help": "synthetic scenes per mineral"})
    image_size: int = field(default=DATASET_OPTIONS["patch_size"], metadata={"help": "synthetic image side, px"})
    rebuild: bool = field(default=False, metadata={"help": "render the synthetic data set again"})
    resume: bool = field(default=False, metadata={"help": "continue the last run instead of starting over"})
    recipe: str = field(default=str(RECIPE), metadata={"help": "training recipe (YAML)"})
    threads: int = field(default=1, metadata={
        "help": "torch threads (default 1: the compact model gains little from more, and on a busy 2-core machine "
                "2 threads measured 10-50x slower; 0 = torch default)"})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the quickstart; extra ``--field value`` flags (or keys of ``--config``) override the recipe."""
    from .cli_args import parse_command_line, save_args, to_argv
    from .training.config import known_fields

    prog = "hf-minerals quickstart"
    args, overrides = parse_command_line([QuickstartArguments], argv, prog=prog, description=__doc__.split("\n\n")[0],
                                         passthrough=known_fields())
    t0 = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from .training import run_training
    from .training.config import ConfigError, parse_args

    try:
        model_args, data_args, training_args = parse_args(["--config", args.recipe, *to_argv(overrides)])
    except ConfigError as exc:
        sys.exit(f"{prog}: error: {exc}")
    save_args(Path(training_args.output_dir).parent / "args.yaml", args, overrides, command=prog)
    options = {**DATASET_OPTIONS, "synthetic_per_class": args.per_class, "patch_size": args.image_size}
    ensure_dataset(Path(data_args.dataset_name), options, rebuild=args.rebuild)
    if not args.resume:
        for folder in (training_args.output_dir, data_args.report_dir):
            if folder and Path(folder).is_dir():
                shutil.rmtree(folder)
    results = run_training(model_args, data_args, training_args)

    # run_training fitted temperature + "unknown" threshold (and the open-set threshold) on the validation groups
    # that did not pick the checkpoint, the open-set distance on the train split, all before the test report
    calibration = json.loads((Path(training_args.output_dir) / "calibration.json").read_text())

    wall = time.perf_counter() - t0
    report = json.loads((Path(data_args.report_dir or training_args.output_dir) / "eval_results.json").read_text())
    chance = 1.0 / len(report["class_names"])
    print()
    print(f"quickstart done in {wall / 60:.1f} min (SYNTHETIC data, compact Swin from scratch)")
    ci = report["ci"]
    print(
        f"test accuracy: {report['accuracy']:.3f} [95% CI {ci['accuracy'][0]:.3f}-{ci['accuracy'][1]:.3f}] "
        f"(chance {chance:.3f}), macro F1 {report['macro_f1']:.3f} [{ci['macro_f1'][0]:.3f}-{ci['macro_f1'][1]:.3f}], "
        f"n = {report['n']} (CIs: bootstrap by {ci['resampled_by']})"
    )
    print(
        f"calibration: temperature {calibration['temperature']:.2f}, answers 'unknown' below "
        f"{calibration['unknown_threshold']:.2f} confidence; test ECE {report['ece_uncalibrated']:.3f} -> "
        f"{report['ece']:.3f} (fitted on validation groups that did not choose the checkpoint)"
    )
    ood = calibration["ood"]
    print(
        f"open set:    answers 'unknown' for images unlike the known minerals ({ood['method_name']} feature distance "
        f"> {ood['threshold']:.3g}, fitted on the {ood['distance_fitted_on']['split']} split; blank and noise images)"
    )
    print(f"model:      {training_args.output_dir}/  (pipeline('image-classification', model=...) loads it)")
    print(f"evaluation: {data_args.report_dir}/  (eval_results.json, confusion_matrix.png, reliability.png)")
    print(f"data set:   {data_args.dataset_name}/")
    return {**results, "quickstart_wall_seconds": round(wall, 1), "test_accuracy_report": report["accuracy"]}


if __name__ == "__main__":
    main()
