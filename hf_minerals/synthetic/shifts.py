"""Imaging conditions: the default distribution and named domain shifts.

A shift changes only how the scene is photographed (or its magnification), never the minerals, so a
model trained on the default and tested under a shift measures robustness to that condition alone.
"""

from __future__ import annotations

import numpy as np

from .imaging import Imaging

#: Named shifts and what they change; see docs/synthetic.md.
SHIFTS: dict[str, str] = {
    "halogen": "3000-3400 K halogen lamp with the white balance left on daylight (orange cast, phases converge)",
    "lowmag": "5x objective: field 3-5x wider, grains 3-5x smaller in pixels",
    "jpeg": "JPEG quality 30-55 with 4:2:0 chroma subsampling",
    "defocus": "defocused by 1.5-3 px, stronger at the corners",
    "overexposed": "exposure set for the dark phases: bright sulfides and gold clip",
    "noisy": "low light, high gain: 4x sensor noise, darker exposure",
}


def sample_imaging(rng: np.random.Generator, field_um: float, shift: str | None = None) -> Imaging:
    """Imaging parameters for one scene: the default microscope, then ``shift`` applied on top."""
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; choose from {sorted(SHIFTS)}")
    light = "led" if rng.random() < 0.7 else "daylight"
    cct = float(rng.uniform(5000, 6500))
    im = Imaging(
        field_um=field_um,
        light=light,
        cct=cct,
        wb_light=light,
        wb_cct=cct * float(rng.uniform(0.95, 1.05)),
        wb_error=tuple(float(x) for x in rng.uniform(0.98, 1.02, 3)),
        exposure=float(rng.uniform(1.0, 1.5)),
        saturation=float(rng.uniform(1.0, 1.25)),
        dust=int(rng.poisson(0.7)),
        vignetting=float(rng.uniform(0.1, 0.3)),
        gradient=float(rng.uniform(0.05, 0.15)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        psf_sigma=float(rng.uniform(0.4, 0.8)),
        defocus_sigma=float(rng.uniform(0.0, 0.4)),
        corner_defocus=float(rng.uniform(0.2, 0.8)),
        read_noise=float(rng.uniform(0.002, 0.006)),
        shot_noise=float(rng.uniform(0.0002, 0.0006)),
        jpeg_quality=0,
        polarizer=float(rng.uniform(0, np.pi)),
    )
    if shift == "halogen":
        im.light, im.cct = "halogen", float(rng.uniform(3000, 3400))
        im.wb_light, im.wb_cct = "daylight", 6500.0
        im.exposure = float(rng.uniform(0.85, 1.15))
    elif shift == "lowmag":
        im.field_um = field_um * float(rng.uniform(3, 5))
    elif shift == "jpeg":
        im.jpeg_quality = int(rng.integers(30, 56))
    elif shift == "defocus":
        im.defocus_sigma = float(rng.uniform(1.5, 3.0))
        im.corner_defocus = float(rng.uniform(1.0, 2.0))
    elif shift == "overexposed":
        im.exposure = float(rng.uniform(2.2, 3.0))
    elif shift == "noisy":
        im.exposure = float(rng.uniform(0.7, 0.95))
        im.read_noise *= 4
        im.shot_noise *= 16
    return im
