"""Spectral optics: 4-band reflectance -> illuminant -> camera RGB with (possibly wrong) white balance -> sRGB.

Colour is computed, not painted: every phase carries reflectance at 470/546/589/650 nm sampled inside the
Quantitative-Data-File ranges (shared/MINERAL_OPTICS.md, Criddle & Stanley; Picot & Johan), and the light
source and white balance act on all phases together the way they do on a real microscope camera.
"""

from __future__ import annotations

import numpy as np

BANDS_NM: tuple[int, ...] = (470, 546, 589, 650)

#: Reflectance in air (%), (low, high) per band. Stibnite has two vibration directions R1 / R2.
REFLECTANCE_RANGES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "pyrite": ((45.0, 51.0, 53.0, 54.0), (47.0, 53.0, 54.5, 56.0)),
    "chalcopyrite": ((31.0, 43.0, 45.5, 46.5), (34.0, 46.0, 48.0, 49.0)),
    "arsenopyrite": ((49.0, 50.0, 50.0, 50.0), (52.0, 53.0, 53.0, 53.0)),
    "gold": ((36.0, 70.0, 82.0, 88.0), (40.0, 76.0, 87.0, 92.0)),
    "stibnite_r1": ((32.0, 30.0, 29.0, 28.0), (34.0, 31.0, 30.0, 29.0)),
    "stibnite_r2": ((44.0, 40.0, 39.0, 37.0), (47.0, 42.0, 40.0, 38.0)),
    "galena": ((44.0, 42.0, 41.5, 40.5), (46.0, 44.0, 43.0, 42.0)),
    "sphalerite": ((17.0, 16.0, 16.0, 15.5), (18.5, 17.5, 17.0, 17.0)),
    "quartz": ((4.2, 4.3, 4.3, 4.3), (4.8, 4.8, 4.8, 4.8)),
    "carbonate": ((5.0, 5.0, 5.0, 4.9), (6.0, 6.0, 5.9, 5.8)),
    "resin": ((3.6, 3.6, 3.6, 3.6), (4.4, 4.4, 4.4, 4.4)),
    "pit": ((0.3, 0.3, 0.3, 0.3), (1.2, 1.2, 1.2, 1.2)),
}

#: Vickers hardness midpoints (kg/mm^2): decides relief and which phases scratches cross.
HARDNESS: dict[str, float] = {
    "gold": 50, "galena": 85, "stibnite": 90, "chalcopyrite": 200, "sphalerite": 200,
    "arsenopyrite": 1000, "pyrite": 1400, "quartz": 1200, "carbonate": 130, "resin": 20, "pit": 0,
}

#: How deeply polishing scratches mark each phase (0 = never; gold is the most scratched).
SCRATCH_SUSCEPTIBILITY: dict[str, float] = {
    "gold": 1.0, "galena": 0.85, "stibnite": 0.8, "chalcopyrite": 0.6, "sphalerite": 0.45,
    "carbonate": 0.5, "resin": 0.7, "quartz": 0.0, "arsenopyrite": 0.0, "pyrite": 0.0, "pit": 0.0,
}

#: Added reflectance of internal reflections per band (sphalerite: yellow to red-brown; gangue: white).
INTERNAL_COLOUR: dict[str, tuple[float, float, float, float]] = {
    "sphalerite": (0.002, 0.010, 0.016, 0.020),
    "quartz": (0.02, 0.02, 0.02, 0.02),
    "carbonate": (0.02, 0.02, 0.02, 0.018),
}

#: Relative spectral power of CIE D65 at the four bands (normalised at 546 nm).
D65 = np.array([114.86, 104.19, 89.40, 80.03]) / 104.19

#: Camera-to-sRGB response under D65 with correct white balance (rows: linear R, G, B; columns: bands).
#: Fitted (ridge least squares, rows summing to 1 so a white reflector stays white) to the CIE-computed
#: sRGB of the reference phases in MINERAL_OPTICS.md; it reproduces that table within ~5 levels.
CAMERA_D65 = np.array(
    [
        [-0.235, 0.079, 0.447, 0.709],
        [0.162, 0.797, 0.046, -0.005],
        [1.079, 0.020, 0.023, -0.122],
    ]
)
#: Per-band camera sensitivity (what the sensor sees per unit radiance): CAMERA_D65 / D65.
SENSITIVITY = CAMERA_D65 / D65[None, :]


def sample_reflectance(phase: str, rng: np.random.Generator, n: int = 1, spread: float = 1.0) -> np.ndarray:
    """``n`` reflectance spectra (fractions, shape (n, 4)) inside the literature range of ``phase``.

    One shared position in the range (composition) plus a small per-band jitter (measurement spread),
    so spectra stay smooth; ``spread`` > 1 lets a grain stray slightly beyond the range (e.g. As-rich rims).
    """
    lo, hi = (np.asarray(v) / 100.0 for v in REFLECTANCE_RANGES[phase])
    t = rng.uniform(0.5 - 0.5 * spread, 0.5 + 0.5 * spread, size=(n, 1))
    t = t + rng.normal(0.0, 0.08, size=(n, 4))
    return (lo + (hi - lo) * t).astype(np.float32)


def stibnite_reflectance(rng: np.random.Generator, theta: np.ndarray) -> np.ndarray:
    """Stibnite spectra for grain orientations ``theta`` (radians): R = R1 + (R2 - R1) cos^2(theta)."""
    theta = np.atleast_1d(theta)
    r1 = sample_reflectance("stibnite_r1", rng, len(theta))
    r2 = sample_reflectance("stibnite_r2", rng, len(theta))
    w = (np.cos(theta) ** 2)[:, None]
    return (r1 + (r2 - r1) * w).astype(np.float32)


def planck(temperature_k: float) -> np.ndarray:
    """Blackbody spectral power at the four bands, normalised at 546 nm."""
    lam = np.asarray(BANDS_NM, dtype=np.float64) * 1e-9
    c2 = 1.4388e-2
    spd = lam**-5 / np.expm1(c2 / (lam * temperature_k))
    return spd / spd[1]


def illuminant(kind: str, cct: float) -> np.ndarray:
    """Relative spectral power at the four bands for ``kind`` in {daylight, led, halogen} at ``cct`` kelvin.

    Daylight is D65 re-tilted to ``cct``; a white LED is that plus its blue-pump excess near 470 nm;
    a halogen lamp is a blackbody (tungsten is close to one).
    """
    if kind == "halogen":
        return planck(cct)
    spd = D65 * planck(cct) / planck(6504.0)
    if kind == "led":
        spd = spd * np.array([1.12, 1.0, 0.97, 0.93])
    elif kind != "daylight":
        raise ValueError(f"unknown illuminant kind {kind!r}; use daylight, led or halogen")
    return spd / spd[1]


def camera_matrix(light: np.ndarray, wb_light: np.ndarray, exposure: float,
                  wb_error: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """(4, 3) matrix taking reflectance spectra to linear sRGB.

    ``light`` is the lamp actually used; ``wb_light`` the lamp the white balance was set for (equal means
    a correct balance, daylight under a halogen lamp means the familiar orange cast); ``wb_error`` scales
    the per-channel gains (a slightly off grey card).
    """
    raw = SENSITIVITY * light[None, :]  # (3, 4): camera response per band under the actual lamp
    white = SENSITIVITY @ wb_light  # what a perfect white looks like under the assumed lamp
    gains = np.asarray(wb_error) / white
    return (raw * gains[:, None] * exposure).T.astype(np.float32)


_LUT_SIZE = 16384
_lin = np.linspace(0.0, 1.0, _LUT_SIZE)
_SRGB_LUT = np.round(
    255.0 * np.where(_lin <= 0.0031308, 12.92 * _lin, 1.055 * np.power(_lin, 1 / 2.4) - 0.055)
).astype(np.uint8)


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] (clipped) to 8-bit sRGB through a lookup table (fast, deterministic)."""
    x = np.multiply(linear, np.float32(_LUT_SIZE - 1), dtype=np.float32)
    x += np.float32(0.5)
    np.clip(x, 0, _LUT_SIZE - 1, out=x)
    return _SRGB_LUT[x.astype(np.uint16)]


def srgb8_to_linear(srgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB to linear RGB floats (for analysis and tests)."""
    v = np.asarray(srgb, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
