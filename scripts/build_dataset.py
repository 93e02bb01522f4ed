#!/usr/bin/env python
"""Build the mineral image data set: a DatasetDict on disk, build_report.json and a dataset card.

    python scripts/build_dataset.py --source my_photos/ --output_dir outputs/dataset --group_regex '^(S\\d+)_'
    python scripts/build_dataset.py --source lumenstone/ --output_dir outputs/ls --patch_size 224 --purity 0.8
    python scripts/build_dataset.py --source synthetic --output_dir outputs/synthetic-dataset

Every option: docs/data.md (or ``--help``). The steps live in ``hf_minerals.data``.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.data.cli import main

if __name__ == "__main__":
    run(main)
