"""Public rendering entry points: one labelled field of view, or a whole section (optionally tile by tile)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..minerals import ALL_SYNTHETIC_MINERALS, BACKGROUND_PHASES, MASK_CODES
from . import scene as sc
from .imaging import Imaging, expose, jpeg
from .layout import Layout
from .polish import surface
from .shifts import sample_imaging

GENERATOR_VERSION = "2"
CELL = 512  # section layout cell (px); grains stay within 2 cells of their own
MAX_PIXELS = 30_000 * 30_000  # tiles (streamed)
MAX_PIXELS_IN_MEMORY = 20_000 * 20_000  # render_section holds image + mask: 4 bytes per pixel


@dataclass
class Scene:
    """A rendered synthetic photomicrograph: ``image`` (H, W, 3) uint8 sRGB, ``mask`` (H, W) uint8
    label codes (``minerals.MASK_CODES``) and JSON-able ``meta`` (always ``"synthetic": True``)."""

    image: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)
    #: Auxiliary ground truth of single scenes: ``instances`` (H, W) int32 grain ids (0 = matrix) and
    #: ``scratches`` (H, W) float32 scratch depth as drawn, before each phase's susceptibility.
    layers: dict[str, np.ndarray] = field(default_factory=dict)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _salt(text: str) -> int:
    return zlib.crc32(text.encode())


ORE_LUT = np.zeros(256, bool)
ORE_LUT[[c for c, n in MASK_CODES.items() if n not in BACKGROUND_PHASES]] = True


def ore_grain_count(mask: np.ndarray, min_px: int = 12) -> int:
    """Ore grains seen in a mask: 8-connected components of ore (any mineral) of at least ``min_px`` px."""
    from scipy import ndimage

    lab, n = ndimage.label(ORE_LUT[mask], structure=np.ones((3, 3)))
    return int((np.bincount(lab.ravel())[1:] >= min_px).sum()) if n else 0


def phase_fractions(mask: np.ndarray) -> dict[str, float]:
    counts = np.bincount(mask.ravel(), minlength=256)
    total = float(mask.size)
    return {MASK_CODES.get(int(c), str(int(c))): round(float(counts[c]) / total, 6) for c in np.nonzero(counts)[0]}


def _render_window(lay: Layout, im: Imaging, x0: int, y0: int, w: int, h: int, frame: tuple[int, int],
                   seed: int, local_noise: bool = False, layers: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render a window with enough margin for the blurs; ``local_noise`` draws the noise for this window
    alone (cheaper for a single scene; sections need position-addressed noise so tiles agree)."""
    m = im.blur_margin()
    surf = surface(lay, x0 - m, y0 - m, w + 2 * m, h + 2 * m, seed, local_noise)
    img = expose(surf, im, x0 - m, y0 - m, frame[0], frame[1], seed, local_noise)
    if layers is not None:
        inner = surf.idx[m : m + h, m : m + w]
        twin = surf.twin[m : m + h, m : m + w] if surf.twin is not None else np.zeros(inner.shape, bool)
        by_phase: dict[str, np.ndarray] = {}
        for sel, alt in ((~twin, False), (twin, True)):  # twin lamellae have their own reflectance
            per = np.bincount(inner[sel], minlength=len(surf.grains))
            for g, n in zip(surf.grains, per):
                if n:
                    r = g.alt_refl if alt and g.alt_refl is not None else g.refl
                    name = MASK_CODES.get(g.code, g.phase)
                    by_phase[name] = by_phase.get(name, np.zeros(5)) + np.append(np.asarray(r, np.float64) * n, n)
        layers["phase_reflectance"] = {k: [round(float(x), 3) for x in 100 * v[:4] / v[4]] for k, v in by_phase.items()}
        layers["instances"] = np.ascontiguousarray(surf.instances()[m : m + h, m : m + w])
        sm = surf.scratch if surf.scratch is not None else np.zeros_like(surf.shade)
        layers["scratches"] = np.ascontiguousarray(sm[m : m + h, m : m + w])
    return img[m : m + h, m : m + w], surf.mask[m : m + h, m : m + w]


def render_scene(mineral: str, size: int = 224, seed: int = 0, shift: str | None = None) -> Scene:
    """One ``size`` x ``size`` field of view dominated by ``mineral``; same arguments, same bytes."""
    if mineral not in ALL_SYNTHETIC_MINERALS:
        raise ValueError(f"unknown mineral {mineral!r}; choose from {list(ALL_SYNTHETIC_MINERALS)}")
    if not 16 <= size <= 4096:
        raise ValueError(f"size must be in [16, 4096] px, got {size}")
    seed = _check_seed(seed)
    salt = _salt(mineral)
    rng_scene = np.random.default_rng([seed, salt, 0])
    rng_img = np.random.default_rng([seed, salt, 1])
    lo, hi = sc.FIELD_UM
    field_um = float(np.exp(rng_scene.uniform(np.log(lo), np.log(hi))))
    im = sample_imaging(rng_img, field_um, shift)
    lay = sc.compose_scene(mineral, size, rng_scene, im, margin=im.blur_margin())
    noise_seed = int(rng_img.integers(2**31))
    layers: dict[str, np.ndarray] = {}
    img, mask = _render_window(lay, im, 0, 0, size, size, (size, size), noise_seed, local_noise=True, layers=layers)
    img = jpeg(img, im.jpeg_quality)
    phase_refl = layers.pop("phase_reflectance")
    meta = {
        "synthetic": True,
        "generator": f"hf_minerals.synthetic v{GENERATOR_VERSION}",
        "kind": "scene",
        "label": mineral,
        "seed": int(seed),
        "shift": shift,
        "width": size,
        "height": size,
        "um_per_px": round(im.field_um / size, 4),
        "imaging": im.to_dict(),
        "phase_fractions": phase_fractions(mask),
        "n_grains": ore_grain_count(mask),
        "n_scratches": len(lay.scratches),
        #: ground truth: pixel-weighted mean reflectance (%) of each phase at 470/546/589/650 nm
        "phase_reflectance": phase_refl,
        "noise_seed": noise_seed,
    }
    return Scene(np.ascontiguousarray(img), np.ascontiguousarray(mask), meta, layers)


def calibration_frames(scene: Scene, standard: float = 20.5) -> tuple[np.ndarray, np.ndarray]:
    """The dark frame and the white-standard frame that go with ``scene``: same lamp, white balance,
    exposure, vignetting, optics and camera, photographed the way a petrographer calibrates a session
    (saved losslessly). ``standard``: the standard's (flat) reflectance in %, e.g. SiC 20.5, WTiC 46."""
    from .imaging import Imaging
    from .layout import Grain
    from .polish import Surface

    if scene.meta.get("kind") != "scene":
        raise ValueError("calibration frames are made for single scenes (render_scene)")
    if not 0 < standard <= 100:
        raise ValueError(f"standard reflectance must be in (0, 100] %, got {standard}")
    d = dict(scene.meta["imaging"])
    d["wb_error"] = tuple(d["wb_error"])
    d["colour_matrix"] = tuple(d["colour_matrix"])
    im = Imaging(**{**d, "jpeg_quality": 0})
    h, w = scene.mask.shape
    frames = []
    for k, r in enumerate((0.0, standard / 100)):
        g = Grain("standard", np.zeros((0, 2)), np.full(4, r, np.float32))
        surf = Surface(np.zeros((h, w), np.int32), [g], np.zeros((h, w), np.uint8), None,
                       np.ones((h, w), np.float32), None, None, None)
        frames.append(expose(surf, im, 0, 0, w, h, int(scene.meta["noise_seed"]) + 17 + k, local_noise=True))
    return frames[0], frames[1]


def channel_reflectance(imaging: dict, spectrum: list[float] | np.ndarray) -> np.ndarray:
    """What a dark/white-calibrated camera reads (%, R G B) for a phase of 4-band reflectance ``spectrum``
    (%): each channel's band-weighted reflectance under the scene's lamp, camera and colour matrix.

    Flat-field calibration divides out lamp, white balance, exposure and vignetting exactly, but not the
    camera's band weighting or its colour mixing: this is the ground truth to compare calibrated pixels to."""
    from .imaging import saturation_matrix
    from .optics import camera_matrix, illuminant

    K = camera_matrix(illuminant(imaging["light"], imaging["cct"]), illuminant(imaging["wb_light"], imaging["wb_cct"]),
                      1.0, tuple(imaging["wb_error"]))
    K = K @ (saturation_matrix(imaging["saturation"]) @ np.asarray(imaging["colour_matrix"], np.float32).reshape(3, 3)).T
    return np.asarray(spectrum, np.float64) @ K / (np.ones(4) @ K)


def render_gangue(size: int = 224, seed: int = 0, shift: str | None = None) -> Scene:
    """A field of view with no ore at all: matrix (quartz, carbonate or resin), its subgrains, pits,
    bubbles, quartz crystals and scratches, photographed like the scenes (a negative for the open-set score)."""
    if not 16 <= size <= 4096:
        raise ValueError(f"size must be in [16, 4096] px, got {size}")
    seed = _check_seed(seed)
    salt = _salt("gangue")
    rng_scene = np.random.default_rng([seed, salt, 0])
    rng_img = np.random.default_rng([seed, salt, 1])
    field_um = float(np.exp(rng_scene.uniform(np.log(sc.FIELD_UM[0]), np.log(sc.FIELD_UM[1]))))
    im = sample_imaging(rng_img, field_um, shift)
    upp = field_um / size
    b = sc._Builder()
    matrix = sc.make_matrix(rng_scene)
    sc._gangue(b, matrix, rng_scene, 0, 0, size, size, upp)
    if matrix.phase != "resin" and rng_scene.random() < 0.6:
        sc._neighbour(b, "quartz_crystals", [], "pyrite", rng_scene, im, upp, 0, 0, size, size, 1.4 * size)
    lay = b.layout(matrix)
    lay.scratches = sc.make_scratches(rng_scene, 0, 0, size, size, float(rng_scene.uniform(10.0, 50.0)), upp)
    lay.um_per_px = upp
    img, mask = _render_window(lay, im, 0, 0, size, size, (size, size), int(rng_img.integers(2**31)), local_noise=True)
    img = jpeg(img, im.jpeg_quality)
    meta = {"synthetic": True, "generator": f"hf_minerals.synthetic v{GENERATOR_VERSION}", "kind": "gangue",
            "label": None, "seed": int(seed), "shift": shift, "width": size, "height": size,
            "um_per_px": round(field_um / size, 4), "phase_fractions": phase_fractions(mask)}
    return Scene(np.ascontiguousarray(img), np.ascontiguousarray(mask), meta)


# ----------------------------------------------------------------------------- sections
class _SectionLayout:
    """Cell-addressed layout of an unbounded section; cells are composed on demand and cached."""

    def __init__(self, seed: int, classes: tuple[str, ...], im: Imaging, um_per_px: float, matrix,
                 mode: str = "cells") -> None:
        self.seed, self.classes, self.im, self.upp, self.matrix = seed, classes, im, um_per_px, matrix
        self.compose = sc.CELL_COMPOSERS[mode]
        self.cache: dict[tuple[int, int], list] = {}

    def cell(self, cx: int, cy: int) -> list:
        key = (cx, cy)
        if key not in self.cache:
            self.cache[key] = self.compose(self.seed, cx, cy, CELL, self.classes, self.im, self.upp, self.matrix)
        return self.cache[key]

    def window(self, x0: int, y0: int, w: int, h: int) -> Layout:
        items = []
        for cy in range((y0 // CELL) - 2, (y0 + h) // CELL + 3):
            for cx in range((x0 // CELL) - 2, (x0 + w) // CELL + 3):
                items += self.cell(cx, cy)
        items.sort(key=lambda it: it[0])  # stable: global (z, cell row, cell col, order) ordering
        lay = Layout(matrix=self.matrix, um_per_px=self.upp)
        for _, gs, fs, ss in items:
            lay.grains += gs
            lay.features += fs
            lay.scratches += ss
        return lay

    def forget_above(self, cy_min: int) -> None:
        for k in [k for k in self.cache if k[1] < cy_min]:
            del self.cache[k]


def _section_setup(width: int, height: int, seed: int, classes, shift, mode: str = "cells"):
    _check_seed(seed)
    if mode not in sc.CELL_COMPOSERS:
        raise ValueError(f"unknown section mode {mode!r}; choose from {list(sc.CELL_COMPOSERS)}")
    if width < 16 or height < 16 or width * height > MAX_PIXELS:
        raise ValueError(f"section size {width}x{height} out of range (16 px .. {MAX_PIXELS} pixels)")
    classes = tuple(classes or ALL_SYNTHETIC_MINERALS)
    bad = [c for c in classes if c not in ALL_SYNTHETIC_MINERALS]
    if bad:
        raise ValueError(f"unknown classes {bad}; choose from {list(ALL_SYNTHETIC_MINERALS)}")
    rng = np.random.default_rng([seed, _salt("section"), 1])
    frame_um = float(rng.uniform(1800, 3500)) * width / 3396  # 5x objective on a 3396-px camera
    im = sample_imaging(rng, frame_um, shift)
    if shift != "jpeg":  # a section is a lossless mosaic; per-photo JPEG belongs to single scenes
        im.jpeg_quality = 0
    matrix = sc.make_matrix(np.random.default_rng([seed, _salt("section"), 2]))
    if matrix.phase == "resin":
        matrix = sc.make_matrix(np.random.default_rng([seed, _salt("section"), 3]))
    return classes, im, _SectionLayout(seed, classes, im, im.field_um / width, matrix, mode), int(rng.integers(2**31))


def render_section_tiles(width: int, height: int, seed: int = 0, classes=None, shift: str | None = None,
                         tile: int = 1024, jpeg_per_tile: bool = True, mode: str = "cells",
                         ) -> Iterator[tuple[int, int, Scene]]:
    """Yield ``(x0, y0, Scene)`` tiles of a ``width`` x ``height`` section, row by row.

    Memory stays bounded by the tile size, so mosaics of 20k x 20k px work. Tiles join seamlessly and
    equal the same window of :func:`render_section` (JPEG, if the shift asks for it, is applied per tile
    here and once over the whole image there). ``mode``: ``cells`` (one dominant mineral per 512-px
    cell) or ``mixed`` (2-4 minerals per cell with inclusions and fracture fills; its own seed stream).
    """
    if tile < 64:
        raise ValueError("tile must be >= 64 px")
    classes, im, layout, noise_seed = _section_setup(width, height, seed, classes, shift, mode)
    for y0 in range(0, height, tile):
        layout.forget_above(y0 // CELL - 3)
        for x0 in range(0, width, tile):
            w, h = min(tile, width - x0), min(tile, height - y0)
            lay = layout.window(x0 - 64, y0 - 64, w + 128, h + 128)
            img, mask = _render_window(lay, im, x0, y0, w, h, (width, height), noise_seed)
            meta = {"synthetic": True, "kind": "section_tile", "x0": x0, "y0": y0, "seed": int(seed), "shift": shift,
                    "mode": mode}
            yield x0, y0, Scene(jpeg(img, im.jpeg_quality) if jpeg_per_tile else img, mask, meta)


def render_section(width: int, height: int, seed: int = 0, classes=None, shift: str | None = None,
                   mode: str = "cells") -> Scene:
    """A whole-section image with many grains of several minerals and its full label mask.

    Holds the whole image in memory (4 bytes/pixel); for bigger mosaics stream :func:`render_section_tiles`."""
    if width * height > MAX_PIXELS_IN_MEMORY:
        raise ValueError(f"{width}x{height} is too big to hold in memory ({MAX_PIXELS_IN_MEMORY} pixels max); "
                         "stream it with render_section_tiles(...) instead")
    classes, im, _, _ = _section_setup(width, height, seed, classes, shift, mode)
    image = np.empty((height, width, 3), np.uint8)
    mask = np.empty((height, width), np.uint8)
    for x0, y0, part in render_section_tiles(width, height, seed, classes, shift, 1024, jpeg_per_tile=False,
                                              mode=mode):
        h, w = part.mask.shape
        image[y0 : y0 + h, x0 : x0 + w] = part.image
        mask[y0 : y0 + h, x0 : x0 + w] = part.mask
    image = jpeg(image, im.jpeg_quality)
    meta = {
        "synthetic": True,
        "generator": f"hf_minerals.synthetic v{GENERATOR_VERSION}",
        "kind": "section",
        "mode": mode,
        "seed": int(seed),
        "shift": shift,
        "classes": list(classes),
        "width": width,
        "height": height,
        "um_per_px": round(im.field_um / width, 4),
        "imaging": im.to_dict(),
        "phase_fractions": phase_fractions(mask),
    }
    return Scene(image, mask, meta)


__all__ = ["Scene", "calibration_frames", "channel_reflectance", "render_scene", "render_section", "render_section_tiles"]
