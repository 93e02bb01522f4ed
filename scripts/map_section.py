#!/usr/bin/env python
"""Map a whole polished section: mineral map, overlay, per-tile probabilities and modal abundance.

    python scripts/map_section.py --model outputs/quickstart/model --image section.png --tile 224 --output_dir outputs/map

Same as ``hf-minerals map``; see docs/mapping.md for formats, the background rule and the unknown answer.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml``, itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.mapping import main

if __name__ == "__main__":
    run(main)
