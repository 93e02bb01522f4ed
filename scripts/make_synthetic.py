#!/usr/bin/env python
"""Write a synthetic reflected-light data set, a whole-section image, or a gallery (all labelled SYNTHETIC).

    python scripts/make_synthetic.py --output_dir outputs/synthetic --per_class 50 --size 224 --seed 0
    python scripts/make_synthetic.py --output_dir outputs/synthetic_halogen --per_class 50 --shift halogen
    python scripts/make_synthetic.py --output_dir outputs/section --width 3396 --height 2547 --seed 1
    python scripts/make_synthetic.py --gallery docs/images/synthetic_gallery.png

See docs/synthetic.md.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``<output_dir>/args.yaml`` (gallery: ``PNG.args.yaml``), itself a valid ``--config``.
"""

from hf_minerals.cli import run
from hf_minerals.synthetic.cli import main

if __name__ == "__main__":
    run(main)
