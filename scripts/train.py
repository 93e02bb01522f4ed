#!/usr/bin/env python
"""Train (fine-tune or from scratch) a mineral classifier with transformers' Trainer + Accelerate.

    accelerate launch scripts/train.py --config recipes/swin_tiny.yaml
    accelerate launch scripts/train.py --config recipes/swin_tiny.yaml --init scratch --output_dir outputs/swin-scratch
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml scripts/train.py --config recipes/resnet50.yaml
    python scripts/train.py --config recipes/quickstart.yaml          # one process, CPU, offline

The YAML recipe gives defaults, any ``--field value`` overrides them, unknown keys are rejected.
Every option: docs/training.md (or ``--help``). The steps live in ``hf_minerals.training``.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.training import main

if __name__ == "__main__":
    run(main)
