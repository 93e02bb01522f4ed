#!/usr/bin/env python
"""Attribution maps for images: ``python scripts/explain.py --model DIR_OR_ID [DIR_OR_ID ...] --images PATHS...
--methods gradcam,guided_gradcam,integrated_gradients,occlusion --output_dir DIR``.

Writes one captioned overlay per image x model x method, ``grid.png`` (rows: images; columns: methods,
or models when ``--model`` names several) and ``explain.json``. See docs/explain.md.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.explain.command import main

if __name__ == "__main__":
    run(main)
