"""Synthetic reflected-light photomicrographs of polished sections, with ground-truth label masks.

Physically grounded (spectral reflectance -> lamp -> camera), see docs/synthetic.md. Everything it makes
is labelled synthetic (file names, ``meta["synthetic"]``).
"""

from .imaging import Imaging
from .io import make_gallery, write_image_folder
from .render import Scene, render_gangue, render_scene, render_section, render_section_tiles
from .shifts import SHIFTS

__all__ = ["Imaging", "SHIFTS", "Scene", "make_gallery", "render_gangue", "render_scene", "render_section",
           "render_section_tiles", "write_image_folder"]
