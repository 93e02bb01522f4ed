#!/usr/bin/env python
"""Build the mineral image data set: a DatasetDict on disk, build_report.json and a dataset card.

    python scripts/build_dataset.py --source my_photos/ --output outputs/dataset --group-regex '^(S\\d+)_'
    python scripts/build_dataset.py --source lumenstone/ --output outputs/ls --patch-size 224 --purity 0.8
    python scripts/build_dataset.py --source synthetic --output outputs/synthetic-dataset

Every option: docs/data.md (or ``--help``). The steps live in ``hf_minerals.data``.
"""

from hf_minerals.cli import run
from hf_minerals.data.cli import main

if __name__ == "__main__":
    run(main)
