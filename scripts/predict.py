#!/usr/bin/env python
"""Classify photomicrographs into a CSV of top-k minerals (``unknown`` under the calibrated threshold).

    python scripts/predict.py images/ --model outputs/quickstart/model --top-k 3 --output preds.csv

Same as ``hf-minerals predict``; see docs/mapping.md.
"""

from hf_minerals.cli import run
from hf_minerals.predict import main

if __name__ == "__main__":
    run(main)
