"""The paper's comparison: each recipe x init trained, evaluated and timed; one table and one chart.

    python scripts/compare.py --recipes swin_tiny mobilenet_v2 resnet50 --init pretrained scratch \\
        --dataset outputs/quickstart/dataset --num_train_epochs 5

Flags it does not know are passed to every training run. Offline, scratch rows use compact configs and
say so; pretrained rows without weights are reported as not run (docs/evaluation.md).

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.comparison import main

if __name__ == "__main__":
    run(main)
