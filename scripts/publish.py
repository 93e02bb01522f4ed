#!/usr/bin/env python
"""Publish to the Hugging Face Hub with a rendered card.

    python scripts/publish.py dataset --repo_id you/opaque-minerals --dataset outputs/dataset
    python scripts/publish.py model --model_dir outputs/quickstart/model --repo_id you/minerals-swin   (docs/evaluation.md)

Authenticate with ``HF_TOKEN`` or ``huggingface-cli login``. Every option: docs/data.md (or ``--help``).
The steps live in ``hf_minerals.hub``.
"""

from hf_minerals.hub import main

if __name__ == "__main__":
    main()
