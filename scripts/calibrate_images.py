#!/usr/bin/env python
"""Raw photomicrographs -> reflectance (%) with a dark frame and a white reflectance standard.

    python scripts/calibrate_images.py --inputs photos/ --dark dark.png --white sic.png --reference_reflectance SiC --output_dir calibrated/

See hf_minerals/reflectance.py and docs/data.md.
"""

from hf_minerals.reflectance import main

if __name__ == "__main__":
    main()
