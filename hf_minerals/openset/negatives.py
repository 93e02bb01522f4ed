"""SELECTION negatives for the open-set score: the only outliers its design (parts, how they combine) was
chosen on. Disjoint from the benchmark's test kinds by construction: other minerals than galena and
sphalerite, other picture families than text / gradients / checkerboards / shapes / clouds, other seeds
(20 000+). All SYNTHETIC.

Unseen minerals for selection (pyrrhotite, magnetite, hematite, covellite) are *proxies*: the generator
draws only the seven minerals of ``ALL_SYNTHETIC_MINERALS``, so a proxy is a known mineral's scene (its
habit and neighbours) rendered with the proxy's reflectance spectrum in place of the host's. The spectra are
approximate literature values (Quantitative Data File order of magnitude, MINERAL_OPTICS.md's sources)
and serve only this selection; they are never a class and never a test kind. The ``exposure`` open-set
method (``scorer.ExposureLogit``, outlier exposure) trains on other negatives made here - random minerals
(``random_mineral_scene``) and the non-micrograph families - so the proxies stay held out to choose it, and
the benchmark's test kinds stay unseen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED0 = 20_000

#: proxy -> (host scene whose reflectance it replaces, (low, high) reflectance in air (%) at 470/546/589/650 nm).
#: Approximate: pyrrhotite creamy pink-brown, magnetite grey (~20 %), hematite grey-white (bireflectant),
#: covellite deep blue to bluish white (strongly bireflectant). Stibnite's two directions take Ro / Re.
PROXIES: dict[str, tuple[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "pyrrhotite": ("chalcopyrite", ((33.0, 37.0, 39.0, 41.5), (36.0, 40.0, 42.0, 44.5))),
    "magnetite": ("pyrite", ((19.5, 19.8, 19.9, 20.3), (21.0, 21.0, 21.2, 21.6))),
    "hematite": ("arsenopyrite", ((26.0, 25.0, 23.5, 21.5), (30.5, 29.0, 27.5, 25.0))),
    "covellite": ("stibnite", ((20.0, 11.0, 6.5, 4.0), (26.0, 22.0, 20.5, 20.0))),
}


@contextmanager
def _reflectance_of(host: str, ranges: tuple[tuple[float, ...], tuple[float, ...]]) -> Iterator[None]:
    from ..synthetic import optics

    keys = ("stibnite_r1", "stibnite_r2") if host == "stibnite" else (host,)
    saved = {k: optics.REFLECTANCE_RANGES[k] for k in keys}
    try:
        if host == "stibnite":  # R1 -> the proxy's low (Ro) spectrum, R2 -> its high one
            optics.REFLECTANCE_RANGES["stibnite_r1"] = (ranges[0], tuple(v + 1.0 for v in ranges[0]))
            optics.REFLECTANCE_RANGES["stibnite_r2"] = (tuple(v - 1.0 for v in ranges[1]), ranges[1])
        else:
            optics.REFLECTANCE_RANGES[host] = ranges
        yield
    finally:
        optics.REFLECTANCE_RANGES.update(saved)


def proxy_scene(proxy: str, size: int, seed: int) -> np.ndarray:
    """A SYNTHETIC scene of ``proxy`` (a host mineral's scene with the proxy's reflectance)."""
    from ..synthetic import render_scene

    host, ranges = PROXIES[proxy]
    with _reflectance_of(host, ranges):
        return render_scene(host, size=size, seed=seed).image


#: Smallest mean |difference| (reflectance %, over the 4 bands) between a random mineral and its host.
RANDOM_MINERAL_MIN_GAP = 4.0
#: Hosts whose habits random minerals borrow: the known (paper) minerals only - never a test kind's habit.
RANDOM_MINERAL_HOSTS = ("arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite")


def _own_mid(host: str) -> np.ndarray:
    from ..synthetic import optics

    keys = ("stibnite_r1", "stibnite_r2") if host == "stibnite" else (host,)
    return np.mean([np.add(*optics.REFLECTANCE_RANGES[k]) / 2 for k in keys], axis=0)


def random_mineral_scene(size: int, seed: int) -> np.ndarray:
    """A SYNTHETIC "unknown mineral" for outlier exposure: a known mineral's scene (habit, neighbours) whose
    reflectance is replaced by a random smooth spectrum (10-60 %, random tint) at least
    ``RANDOM_MINERAL_MIN_GAP`` % from the host's own. It may match ANOTHER mineral's colour: colour on the wrong
    habit is exactly what an unknown mineral looks like to the score. Never a test kind's habit or seeds."""
    from ..synthetic import render_scene

    rng = np.random.default_rng([seed, 4242])
    host = RANDOM_MINERAL_HOSTS[int(rng.integers(len(RANDOM_MINERAL_HOSTS)))]
    own = _own_mid(host)
    while True:
        slope = rng.normal(0, 0.15) * np.linspace(-1, 1, 4)
        low = rng.uniform(10, 60) * np.exp(slope + rng.normal(0, 0.03, 4))
        if np.abs(low - own).mean() >= RANDOM_MINERAL_MIN_GAP:
            break
    high = low + rng.uniform(1.0, 3.0)
    if host == "stibnite":  # keep its bireflectance: the second direction brighter by 10-40 %
        high = low * rng.uniform(1.1, 1.4)
    with _reflectance_of(host, (tuple(float(v) for v in low), tuple(float(v) for v in high))):
        return render_scene(host, size=size, seed=seed).image


def exposure_negatives(size: int, n_minerals: int, n_per_family: int) -> tuple[list[np.ndarray], dict]:
    """What the ``exposure`` open-set method trains against: ``n_minerals`` random minerals (seeds 30 000+) and
    ``n_per_family`` images of each selection non-micrograph family (seeds 20 000+). The proxy minerals are NOT
    among them: they stay held out to choose the method."""
    images = [random_mineral_scene(size, 30_000 + i) for i in range(n_minerals)]
    for k, make in enumerate(NON_MICROGRAPH.values()):
        rng = np.random.default_rng([SEED0, k])
        images += [make(rng, size) for _ in range(n_per_family)]
    return images, {"random_minerals": n_minerals, "random_mineral_hosts": list(RANDOM_MINERAL_HOSTS),
                    "non_micrograph": sorted(NON_MICROGRAPH), "per_family": n_per_family}


# -- non-micrograph families of the selection (none is a benchmark test family) ----------------------
def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sinusoidal colour gratings (test patterns, fabric, blinds)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ang, period = rng.uniform(0, np.pi), rng.uniform(4, size / 2)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy) / period + rng.uniform(0, 6.3))
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    return (a + (b - a) * t[..., None]).astype(np.uint8)


def _line_drawing(rng: np.random.Generator, size: int) -> np.ndarray:
    """Lines and polylines on a plain paper-like background (sketches, charts)."""
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(180, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 20))):
        pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(int(rng.integers(2, 6)))]
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 200, 3)), width=int(rng.integers(1, 4)))
    return np.asarray(img)


def _fractal(rng: np.random.Generator, size: int) -> np.ndarray:
    """1/f^beta coloured noise (photo-like natural texture: foliage, sand, clouds at several scales)."""
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    amp = f ** -rng.uniform(1.2, 2.2)
    chans = []
    for _ in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random((size, size)))
        c = np.fft.ifft2(spec).real
        chans.append((c - c.mean()) / (c.std() + 1e-9))
    x = np.stack(chans, -1) @ rng.normal(0, 1, (3, 3)) * rng.uniform(20, 50) + rng.uniform(60, 190, 3)
    return np.clip(x, 0, 255).astype(np.uint8)


def _voronoi(rng: np.random.Generator, size: int) -> np.ndarray:
    """Flat-colour cells (stained glass, mosaics, segmentation maps)."""
    n = int(rng.integers(5, 40))
    seeds, cols = rng.uniform(0, size, (n, 2)), rng.integers(0, 256, (n, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
    img = cols[d.argmin(-1)].astype(np.uint8)
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.0)))))


NON_MICROGRAPH: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "stripes": _stripes, "line_drawing": _line_drawing, "fractal_noise": _fractal, "voronoi": _voronoi,
}


def selection_negatives(size: int, n: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """group -> kind -> n SYNTHETIC images (uint8 HxWx3): ``unseen_minerals`` (proxies) and ``non_micrograph``."""
    out: dict[str, dict[str, list[np.ndarray]]] = {
        "unseen_minerals": {p: [proxy_scene(p, size, SEED0 + i) for i in range(n)] for p in PROXIES},
        "non_micrograph": {},
    }
    for k, (kind, make) in enumerate(NON_MICROGRAPH.items()):
        rng = np.random.default_rng([SEED0, k])
        out["non_micrograph"][kind] = [make(rng, size) for _ in range(n)]
    return out
