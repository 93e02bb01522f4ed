"""Evaluate a mineral classifier on a data-set split and write the report.

    python scripts/eval_model.py --model outputs/quickstart/model --dataset outputs/quickstart/dataset --split test

Writes eval_results.json, per_class.md/.csv, predictions.csv, confusion_matrix.png and reliability.png
(see docs/evaluation.md).

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.evaluation import main

if __name__ == "__main__":
    run(main)
