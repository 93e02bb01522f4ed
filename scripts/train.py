#!/usr/bin/env python
"""Train (fine-tune or from scratch) a mineral classifier with transformers' Trainer + Accelerate.

    accelerate launch scripts/train.py --config recipes/swin_tiny.yaml
    accelerate launch scripts/train.py --config recipes/swin_tiny.yaml --init scratch --output_dir outputs/swin-scratch
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml scripts/train.py --config recipes/resnet50.yaml
    python scripts/train.py --config recipes/quickstart.yaml          # one process, CPU, offline

The YAML recipe gives defaults, any ``--field value`` overrides them, unknown keys are rejected.
Every option: docs/training.md (or ``--help``). The steps live in ``hf_minerals.training``.
"""

import os
import sys

# sys.path[0] is this folder, where scripts/evaluate.py would shadow the `evaluate` package.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from hf_minerals.cli import run  # noqa: E402
from hf_minerals.training import main  # noqa: E402

if __name__ == "__main__":
    run(main)
