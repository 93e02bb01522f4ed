#!/usr/bin/env python
"""Write a synthetic reflected-light data set, a whole-section image, or a gallery (all labelled SYNTHETIC).

    python scripts/make_synthetic.py --output outputs/synthetic --per-class 50 --size 224 --seed 0
    python scripts/make_synthetic.py --output outputs/synthetic_halogen --per-class 50 --shift halogen
    python scripts/make_synthetic.py --output outputs/section --width 3396 --height 2547 --seed 1
    python scripts/make_synthetic.py --gallery docs/images/synthetic_gallery.png

See docs/synthetic.md.
"""

from hf_minerals.cli import run
from hf_minerals.synthetic.cli import main

if __name__ == "__main__":
    run(main)
