"""Imaging conditions: the default distribution and named domain shifts.

A shift changes only how the scene is photographed (or its magnification), never the minerals, so a
model trained on the default and tested under a shift measures robustness to that condition alone.
"""

from __future__ import annotations

import numpy as np

from .imaging import Imaging

#: Named shifts and what they change; see docs/synthetic.md. Every shift lies OUTSIDE the default
#: distribution below, so a model trained on the default meets conditions it has never seen.
SHIFTS: dict[str, str] = {
    "halogen": "3000-3400 K halogen lamp with the white balance left on daylight (orange cast, phases converge)",
    "lowmag": "5x objective: field 3-5x wider, grains 3-5x smaller in pixels",
    "jpeg": "JPEG quality 30-55 with 4:2:0 chroma subsampling",
    "defocus": "defocused by 1.5-3 px, stronger at the corners",
    "overexposed": "exposure +1.3 to +2 EV above the default centre: bright sulfides and gold clip",
    "underexposed": "exposure -1.3 to -2 EV below the default centre: dark, noisy, compressed phases",
    "white_balance": "white balance off by 15-30 % on the red and blue channels (a strong pink, green or blue cast)",
    "camera": "another camera: a colour matrix 3x further from the reference and a different picture style",
    "noisy": "low light, high gain: 4x sensor noise, darker exposure",
}

#: Exposure at the centre of the default distribution (a 100 % reflector reads this) and its spread (EV).
EXPOSURE_CENTRE, EXPOSURE_EV = 1.15, 1.0


def _colour_matrix(rng: np.random.Generator, sigma: float) -> tuple[float, ...]:
    """A camera colour-matrix error: off-diagonal cross-talk ~N(0, sigma), each row summing to 1."""
    m = rng.normal(0, sigma, (3, 3)) * (1 - np.eye(3))
    m[np.diag_indices(3)] = 1 - m.sum(1)  # the diagonal absorbs the cross-talk: white stays white
    return tuple(float(x) for x in m.ravel())


def sample_imaging(rng: np.random.Generator, field_um: float, shift: str | None = None) -> Imaging:
    """Imaging parameters for one photo: the default (like many labs: LED to halogen lamps, white balance
    set for the lamp but imperfect, exposure +-1 EV, vignetting, camera colour matrix, JPEG q70-95 or
    lossless), identical for every class; then ``shift`` applied on top."""
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; choose from {sorted(SHIFTS)}")
    u = rng.random()
    light, cct = ("halogen", float(rng.uniform(2900, 3400))) if u < 0.35 else (
        ("led", float(rng.uniform(4000, 6500))) if u < 0.8 else ("daylight", float(rng.uniform(5000, 6500))))
    im = Imaging(
        field_um=field_um,
        light=light,
        cct=cct,
        wb_light=light,
        wb_cct=cct * float(np.exp(np.clip(rng.normal(0, 0.07), -0.15, 0.15))),
        wb_error=tuple(float(x) for x in rng.uniform(0.94, 1.06, 3)),
        exposure=EXPOSURE_CENTRE * float(2 ** rng.uniform(-EXPOSURE_EV, EXPOSURE_EV)),
        saturation=float(rng.uniform(0.9, 1.3)),
        dust=int(rng.poisson(0.7)),
        vignetting=float(rng.uniform(0.05, 0.35)),
        gradient=float(rng.uniform(0.03, 0.15)),
        gradient_angle=float(rng.uniform(0, 2 * np.pi)),
        psf_sigma=float(rng.uniform(0.4, 0.8)),
        defocus_sigma=float(rng.uniform(0.0, 0.4)),
        corner_defocus=float(rng.uniform(0.2, 0.8)),
        read_noise=float(rng.uniform(0.002, 0.006)),
        shot_noise=float(rng.uniform(0.0002, 0.0006)),
        jpeg_quality=int(rng.integers(70, 96)) if rng.random() < 0.75 else 0,
        polarizer=float(rng.uniform(0, np.pi)),
        colour_matrix=_colour_matrix(rng, 0.03),
        black_level=float(rng.uniform(0.0, 0.004)),
    )
    if shift == "halogen":
        im.light, im.cct = "halogen", float(rng.uniform(3000, 3400))
        im.wb_light, im.wb_cct = "daylight", 6500.0
    elif shift == "lowmag":
        im.field_um = field_um * float(rng.uniform(3, 5))
    elif shift == "jpeg":
        im.jpeg_quality = int(rng.integers(30, 56))
    elif shift == "defocus":
        im.defocus_sigma = float(rng.uniform(1.5, 3.0))
        im.corner_defocus = float(rng.uniform(1.0, 2.0))
    elif shift == "overexposed":
        im.exposure = EXPOSURE_CENTRE * float(2 ** rng.uniform(1.3, 2.0))
    elif shift == "underexposed":
        im.exposure = EXPOSURE_CENTRE * float(2 ** rng.uniform(-2.0, -1.3))
    elif shift == "white_balance":
        r, b = (float(1 + s * rng.uniform(0.15, 0.3)) for s in rng.choice([-1, 1], 2))
        im.wb_error = (r, float(rng.uniform(0.97, 1.03)), b)
    elif shift == "camera":
        im.colour_matrix = _colour_matrix(rng, 0.09)
        im.saturation = float(rng.choice([0.75, 1.5]))
    elif shift == "noisy":
        im.exposure = float(rng.uniform(0.7, 0.95))
        im.read_noise *= 4
        im.shot_noise *= 16
    return im
