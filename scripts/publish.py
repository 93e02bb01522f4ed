#!/usr/bin/env python
"""Publish to the Hugging Face Hub with a rendered card.

    python scripts/publish.py dataset --repo_id you/opaque-minerals --dataset outputs/dataset
    python scripts/publish.py model --model_dir outputs/quickstart/model --repo_id you/minerals-swin   (docs/evaluation.md)

Authenticate with ``HF_TOKEN`` or ``huggingface-cli login``. Every option: docs/data.md (or ``--help``).
The steps live in ``hf_minerals.hub``.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``outputs/publish/KIND-<namespace>--<name>.args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.hub import main

if __name__ == "__main__":
    run(main)
