"""``make quickstart``: the whole job offline in a few minutes on 2 CPU cores.

SYNTHETIC data set (``hf_minerals.data.build_dataset("synthetic")``) -> compact Swin from a config,
random init (``recipes/quickstart.yaml``) -> Trainer -> test-split report -> model card. Leaves
``outputs/quickstart/{dataset,model,eval}``; ``pipeline("image-classification", model=
"outputs/quickstart/model")`` loads the result. The scores say the pipeline works, nothing about
real minerals.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the quickstart; extra ``--field value`` flags override ``recipes/quickstart.yaml``."""
    p = argparse.ArgumentParser(prog="hf-minerals quickstart", description=__doc__.split("\n\n")[0])
    p.add_argument("--per_class", type=int, default=DATASET_OPTIONS["synthetic_per_class"], help="synthetic scenes per mineral")
    p.add_argument("--image_size", type=int, default=DATASET_OPTIONS["patch_size"], help="synthetic image side, px")
    p.add_argument("--rebuild", action="store_true", help="render the synthetic data set again")
    p.add_argument("--resume", action="store_true", help="continue the last run instead of starting over")
    p.add_argument("--recipe", default=str(RECIPE), help="training recipe (YAML)")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1: the compact model gains little from more, and on a busy 2-core machine "
        "2 threads measured 10-50x slower; 0 = torch default)",
    )
    args, overrides = p.parse_known_args(argv)
    t0 = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from .config import parse_args
    from .training import run_training

    model_args, data_args, training_args = parse_args(["--config", args.recipe, *overrides])
    options = {**DATASET_OPTIONS, "synthetic_per_class": args.per_class, "patch_size": args.image_size}
    ensure_dataset(Path(data_args.dataset_name), options, rebuild=args.rebuild)
    if not args.resume:
        for folder in (training_args.output_dir, data_args.report_dir):
            if folder and Path(folder).is_dir():
                shutil.rmtree(folder)
    results = run_training(model_args, data_args, training_args)

    # run_training fitted temperature + "unknown" threshold on the validation groups that did not pick the
    # checkpoint, before the test report (calibration.json in the model folder)
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
    print(f"model:      {training_args.output_dir}/  (pipeline('image-classification', model=...) loads it)")
    print(f"evaluation: {data_args.report_dir}/  (eval_results.json, confusion_matrix.png, reliability.png)")
    print(f"data set:   {data_args.dataset_name}/")
    return {**results, "quickstart_wall_seconds": round(wall, 1), "test_accuracy_report": report["accuracy"]}


if __name__ == "__main__":
    main()
