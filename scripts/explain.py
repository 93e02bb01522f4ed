#!/usr/bin/env python
"""Attribution maps for images: ``python scripts/explain.py --model DIR_OR_ID [--model ...] --images PATHS...
--methods gradcam,guided_gradcam,integrated_gradients,occlusion --output DIR``.

Writes one captioned overlay per image x model x method, ``grid.png`` (rows: images; columns: methods,
or models when several ``--model`` are given) and ``explain.json``. See docs/explain.md.
"""

from hf_minerals.explain.command import main

if __name__ == "__main__":
    main()
