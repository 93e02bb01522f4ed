#!/usr/bin/env python
"""Publish to the Hugging Face Hub with a rendered card.

    python scripts/publish.py dataset --repo-id you/opaque-minerals --dataset outputs/dataset
    python scripts/publish.py model outputs/quickstart/model --repo-id you/minerals-swin   (docs/evaluation.md)

Authenticate with ``HF_TOKEN`` or ``huggingface-cli login``. Every option: docs/data.md (or ``--help``).
The steps live in ``hf_minerals.hub``.
"""

from hf_minerals.cli import run
from hf_minerals.hub import main

if __name__ == "__main__":
    run(main)
