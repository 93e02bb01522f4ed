#!/usr/bin/env python
"""Classify photomicrographs into a CSV of top-k minerals (``unknown`` under the calibrated threshold).

    python scripts/predict.py --images images/ --model outputs/quickstart/model --top_k 3 --output_file preds.csv

Same as ``hf-minerals predict``; see docs/mapping.md.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<CSV>.args.yaml`` beside the CSV, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.predict import main

if __name__ == "__main__":
    run(main)
