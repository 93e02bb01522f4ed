"""Composition: which grains go where, with realistic associations; the labelled mineral dominates.

A classification scene is one field of view around a labelled mineral with intruding neighbours
(gold in pyrite, chalcopyrite filling pyrite fractures, stibnite in quartz ...). A section is the same
vocabulary laid out cell by cell (each cell from its own seeded generator) so that any window of an
arbitrarily large section can be rendered on its own.
"""

from __future__ import annotations

import numpy as np

from ..minerals import CODE_OF
from . import habits
from .imaging import Imaging
from .layout import Grain, Layout, rasterize
from .optics import sample_reflectance
from .polish import make_scratches

#: Grain diameters in micrometres (log-uniform), MINERAL_OPTICS.md section 4.
SIZE_UM: dict[str, tuple[float, float]] = {
    "pyrite": (40, 600), "arsenopyrite": (30, 300), "gold": (5, 60), "stibnite": (150, 1500),
    "chalcopyrite": (80, 700), "galena": (80, 600), "sphalerite": (100, 800),
}
#: Field-of-view width (um, log-uniform), ONE range for every class (50x down to 5x objective): a class
#: drawn at its own magnification would be recognisable from the grain scale of the gangue alone.
FIELD_UM: tuple[float, float] = (120.0, 2400.0)
#: Ore fraction of the field and number of ore bodies (log-uniform): shared by every class, so neither
#: coverage nor grain count names the class (see ``shortcuts.py``).
COVERAGE: tuple[float, float] = (0.12, 0.55)
BODIES: tuple[float, float] = (1.0, 12.0)
#: Naming rule (what a petrographer calls the photo): gold if any gold is visible (it is the point of the
#: photo, hosts included); otherwise the ore mineral covering most of the field. So gold scenes keep their
#: pyrite/arsenopyrite hosts even when these are larger, and no other class carries visible gold.
GOLD_HOSTS: tuple[tuple[str, float], ...] = (("pyrite", 0.6), ("arsenopyrite", 0.3), ("chalcopyrite", 0.1))
#: Ore neighbours of each non-gold class in a scene (relative weights), never gold (see the naming rule).
SCENE_NEIGHBOURS: dict[str, tuple[tuple[str, float], ...]] = {
    "pyrite": (("chalcopyrite", 0.4), ("arsenopyrite", 0.3), ("galena", 0.15), ("sphalerite", 0.15)),
    "arsenopyrite": (("pyrite", 0.8), ("stibnite", 0.1), ("chalcopyrite", 0.1)),
    "chalcopyrite": (("pyrite", 0.5), ("sphalerite", 0.3), ("galena", 0.2)),
    "stibnite": (("pyrite", 0.6), ("arsenopyrite", 0.4)),
    "galena": (("sphalerite", 0.6), ("chalcopyrite", 0.2), ("pyrite", 0.2)),
    "sphalerite": (("galena", 0.6), ("chalcopyrite", 0.2), ("pyrite", 0.2)),
}
#: Fracture fillings of pyrite in scenes (never gold outside gold scenes).
SCENE_FILLS: dict[str, tuple[str, ...]] = {"pyrite": ("pit", "chalcopyrite", "galena"), "gold": ("pit", "gold")}
#: Neighbours that intrude into a section cell of the key mineral: (kind, probability).
ASSOCIATIONS: dict[str, list[tuple[str, float]]] = {
    "pyrite": [("gold_in_host", 0.3), ("fill:chalcopyrite", 0.3), ("fill:gold", 0.1), ("fill:galena", 0.1),
               ("arsenopyrite", 0.25), ("chalcopyrite", 0.25), ("sphalerite", 0.1), ("quartz_crystals", 0.3)],
    "arsenopyrite": [("pyrite", 0.5), ("gold_in_host", 0.25), ("stibnite", 0.05), ("quartz_crystals", 0.3)],
    "gold": [("host:pyrite", 0.5), ("host:arsenopyrite", 0.2), ("chalcopyrite", 0.2), ("quartz_crystals", 0.2)],
    "chalcopyrite": [("pyrite", 0.5), ("sphalerite", 0.3), ("galena", 0.2), ("quartz_crystals", 0.5)],
    "stibnite": [("gold", 0.15), ("pyrite", 0.2), ("arsenopyrite", 0.1), ("quartz_crystals", 0.3)],
    "galena": [("sphalerite", 0.6), ("chalcopyrite", 0.3), ("pyrite", 0.3)],
    "sphalerite": [("galena", 0.6), ("chalcopyrite", 0.3), ("pyrite", 0.3)],
}
#: Drawing order: space-filling phases first, euhedral crystals over them, gold last (fills gaps).
Z_ORDER = {"quartz": 0, "carbonate": 0, "resin": 0, "chalcopyrite": 1, "sphalerite": 2, "galena": 2,
           "stibnite": 3, "quartz_crystal": 3.5, "arsenopyrite": 4, "pyrite": 4, "gold": 6}
ORE_CODES = {CODE_OF[m] for m in SIZE_UM}
#: Area of one grain of diameter d is about AREA_FACTOR * d^2 (laths and rhombs are thin), for coverage targets.
AREA_FACTOR = {"stibnite": 0.2, "arsenopyrite": 0.35}
#: Relative frequency of each mineral as the dominant phase of a section cell (gold is rare and small).
ABUNDANCE = {"pyrite": 3.0, "arsenopyrite": 1.5, "chalcopyrite": 1.5, "sphalerite": 1.2, "galena": 1.2,
             "stibnite": 1.0, "gold": 0.5}


def grain_diameter(mineral: str, rng: np.random.Generator, um_per_px: float, cap: float) -> float:
    lo, hi = SIZE_UM[mineral]
    return float(min(np.exp(rng.uniform(np.log(lo), np.log(hi))) / um_per_px, cap))


def make_mineral(mineral: str, c: np.ndarray, d: float, rng: np.random.Generator, im: Imaging,
                 um_per_px: float, fill: str = "pit") -> habits.Parts:
    """One crystal/aggregate of ``mineral`` with its own features (pluck pits 1-8 um across); every
    artefact (pits, fractures, lamellae, exsolution blebs) is sized in micrometres."""
    pit_px = max(0.8, float(np.exp(rng.uniform(np.log(0.5), np.log(4.0)))) / um_per_px)
    if mineral == "pyrite":
        return habits.make_pyrite(c, d, rng, fill, pit_px, um_per_px)
    if mineral == "arsenopyrite":
        return habits.make_arsenopyrite(c, d, rng, pit_px, um_per_px)
    if mineral == "stibnite":
        return habits.make_stibnite(c, d, rng, im.polarizer, um_per_px)
    if mineral == "gold":
        return habits.make_gold(c, d, rng)
    if mineral == "chalcopyrite":
        return habits.make_chalcopyrite(c, d, rng, pit_px)
    if mineral == "galena":
        return habits.make_galena(c, d, rng, pit_px=max(1.2, rng.uniform(2, 6) / um_per_px))
    if mineral == "sphalerite":
        return habits.make_sphalerite(c, d, rng, disease=rng.uniform(0.3, 1.5), upp=um_per_px)
    raise ValueError(f"unknown mineral {mineral!r}; choose from {sorted(SIZE_UM)}")


def make_matrix(rng: np.random.Generator) -> Grain:
    phase = str(rng.choice(["quartz", "carbonate", "resin"], p=[0.65, 0.25, 0.10]))
    return Grain(phase, np.zeros((0, 2)), sample_reflectance(phase, rng)[0], internal=0.3 if phase != "resin" else 0.0)


class _Builder:
    """Collects grains/features with their z-order and whether they belong to the label."""

    def __init__(self) -> None:
        self.items: list[tuple[float, bool, list[Grain], list[Grain]]] = []

    def add(self, parts: habits.Parts, z: float, label: bool) -> None:
        self.items.append((z, label, parts[0], parts[1]))

    def layout(self, matrix: Grain, drop: set[int] = frozenset()) -> Layout:  # type: ignore[assignment]
        order = sorted((it for k, it in enumerate(self.items) if k not in drop), key=lambda it: it[0])
        lay = Layout(matrix=matrix)
        for _, _, gs, fs in order:
            lay.grains += gs
            lay.features += fs
        return lay


def _gangue(b: _Builder, matrix: Grain, rng, x0, y0, w, h, um_per_px: float) -> None:
    """Gangue texture: subgrains of the matrix phase, plucked pits, resin bubbles, carbonate cleavage pits."""
    n_pits = int(rng.poisson(min(w * h * um_per_px**2 / 8000, w * h / 1500)))  # ~1 per 90 x 90 um
    if n_pits and matrix.phase != "resin":
        c = np.stack([x0 + rng.uniform(0, w, n_pits), y0 + rng.uniform(0, h, n_pits)], 1)
        r = np.maximum(rng.uniform(0.5, 4.0, n_pits) / um_per_px, 0.6) * rng.uniform(0.6, 1.4, n_pits)
        shapes = habits.blobs(c, np.minimum(r, 8), rng, 0.6, 7)
        b.add(([Grain("pit", shapes, sample_reflectance("pit", rng)[0])], []), 0.5, False)
    n = int(rng.poisson(w * h / 9000 * min(1.0, 2 * um_per_px)))
    for _ in range(min(n, 40)):
        c = np.array([x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)])
        if matrix.phase == "resin" or rng.random() < 0.01:  # air bubbles
            r = max(1.0, rng.uniform(2, 15) / um_per_px)
            b.add(([Grain("pit", habits.blob(min(r, 60), c, rng, 0.05, 20), sample_reflectance("pit", rng)[0])], []), 0.5, False)
        else:
            d = max(6.0, rng.uniform(100, 500) / um_per_px)
            g = Grain(matrix.phase, habits.polygon(int(rng.integers(5, 8)), min(d, 300) / 2, rng.uniform(0, 6.3), c, rng, 0.2),
                      sample_reflectance(matrix.phase, rng)[0], internal=matrix.internal)
            plucked: list[Grain] = []
            if matrix.phase == "carbonate":  # plucked along cleavage
                plucked = habits.pits(g, c, min(d, 300) / 3, int(rng.integers(0, 4)), max(1.0, rng.uniform(2, 6) / um_per_px), rng)
            b.add(([g], plucked), 0, False)


def _neighbour(b: _Builder, kind: str, label_parts: list[habits.Parts], mineral: str, rng, im, upp, x0, y0, w, h, cap):
    def spot() -> np.ndarray:
        return np.array([x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)])

    hosts = [g for gs, _ in label_parts for g in gs if g.phase in ("pyrite", "arsenopyrite")]
    if kind == "gold_in_host" and hosts:
        for host in rng.choice(hosts, size=min(len(hosts), int(rng.integers(1, 4))), replace=False):
            pts = host.points
            c = pts.mean(0) + (pts[int(rng.integers(len(pts)))] - pts.mean(0)) * rng.uniform(0, 0.9)
            b.add(habits.make_gold(c, grain_diameter("gold", rng, upp, cap / 3), rng, host=host), 6, False)
    elif kind.startswith("host:"):  # gold scene: the host crystal the gold sits in or on
        host = kind.split(":")[1]
        labels = [g for gs, _ in label_parts for g in gs]
        c = labels[0].points.mean(0) + rng.normal(0, 0.15 * w, 2) if labels else spot()
        d = grain_diameter(host, rng, upp, cap) * rng.uniform(0.4, 1.0)
        b.add(make_mineral(host, c, d, rng, im, upp, fill=str(rng.choice(["pit", "gold"]))), Z_ORDER[host], False)
    elif kind == "quartz_crystals":
        for _ in range(int(rng.integers(1, 6))):
            d = grain_diameter(mineral, rng, upp, cap) * rng.uniform(0.3, 0.8)
            b.add(([habits.make_gangue_crystal(spot(), d, rng, "quartz")], []), Z_ORDER["quartz_crystal"], False)
    elif kind in SIZE_UM:
        for _ in range(int(rng.integers(1, 4))):
            d = grain_diameter(kind, rng, upp, cap) * rng.uniform(0.4, 0.9)
            b.add(make_mineral(kind, spot(), d, rng, im, upp), Z_ORDER[kind], False)


def _place_label_grains(b: _Builder, mineral: str, assoc: list[str], fill: str, label_parts: list[habits.Parts],
                        rng: np.random.Generator, im: Imaging, upp: float, cap: float, target_area: float,
                        max_grains: int, centre, window: tuple[float, float, float, float]) -> None:
    """Add label grains until they cover ``target_area`` px² (or ``max_grains``), then their associated neighbours.

    Shared by single scenes and section cells so both place grains the same way (same RNG call order).
    """
    area = 0.0
    while area < target_area and len(label_parts) < max_grains:
        d = grain_diameter(mineral, rng, upp, cap)
        c = centre(rng)
        parts = make_mineral(mineral, c, d, rng, im, upp, fill=fill)
        label_parts.append(parts)
        b.add(parts, Z_ORDER[mineral], True)
        area += AREA_FACTOR.get(mineral, 0.6) * d * d
    x0, y0, w, h = window
    for kind in assoc:
        if not kind.startswith("fill:"):
            _neighbour(b, kind, label_parts, mineral, rng, im, upp, x0, y0, w, h, cap)


def _pick(options: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    w = np.array([p for _, p in options])
    return str(options[int(rng.choice(len(options), p=w / w.sum()))][0])


def _add_gold(b: _Builder, hosts: list[Grain], rng: np.random.Generator, upp: float, area_px: float) -> None:
    """Gold blebs (5-60 um, at least 3 px so that the photo shows them) until ``area_px`` is covered: 70 %
    as inclusions clipped to a host, the rest on the host's rim (grains on the pyrite-quartz boundary)."""
    area, n = 0.0, 0
    while area < area_px and n < 40 and hosts:
        host = hosts[int(rng.integers(len(hosts)))]
        pts = host.points.reshape(-1, 2)
        span = float(np.ptp(pts, 0).max())
        d = float(np.clip(np.exp(rng.uniform(np.log(5), np.log(60))) / upp, 3.0, max(3.0, 0.45 * span)))
        centre = pts.mean(0)
        if rng.random() < 0.7:  # inclusion: inside the host
            c = centre + (pts[int(rng.integers(len(pts)))] - centre) * rng.uniform(0, 0.7)
            b.add(habits.make_gold(c, d, rng, host=host), 6, True)
        else:  # on the rim, half in the gangue
            b.add(habits.make_gold(pts[int(rng.integers(len(pts)))], d, rng), 6, True)
        area += 0.6 * d * d
        n += 1


def compose_scene(mineral: str, size: int, rng: np.random.Generator, im: Imaging, margin: int = 0) -> Layout:
    """Layout of one labelled field of view, named by the petrographer's rule (see ``GOLD_HOSTS``).

    Magnification (``im.field_um``), ore coverage, the number of ore bodies, their placement (uniform over
    the field) and the gangue are drawn from one distribution for every class; only which minerals the
    bodies are made of depends on the class. The check rasterises the window with ``margin`` px around
    the field, the window the renderer will use, so its raster is reused."""
    if mineral not in SIZE_UM:
        raise ValueError(f"unknown mineral {mineral!r}; choose from {sorted(SIZE_UM)}")
    upp = im.field_um / size
    cap = 1.4 * size
    b = _Builder()
    matrix = make_matrix(rng)
    _gangue(b, matrix, rng, 0, 0, size, size, upp)
    if rng.random() < 0.3:  # euhedral quartz crystals in the gangue (shared by every class)
        for _ in range(int(rng.integers(1, 5))):
            d = min(float(np.exp(rng.uniform(np.log(40), np.log(600)))) / upp, 0.5 * size)
            c = rng.uniform(0, size, 2)
            b.add(([habits.make_gangue_crystal(c, d, rng, "quartz")], []), Z_ORDER["quartz_crystal"], False)
    coverage = float(rng.uniform(*COVERAGE))
    k = int(round(np.exp(rng.uniform(np.log(BODIES[0]), np.log(BODIES[1])))))
    weights = np.sort(rng.lognormal(0.0, 0.6, k))[::-1]
    areas = coverage * size * size * weights / weights.sum()
    gold = mineral == "gold"
    hosts: list[Grain] = []
    for j, area in enumerate(areas):
        if gold:
            m, is_label = _pick(GOLD_HOSTS, rng), False
        elif j == 0 or rng.random() < 0.6:
            m, is_label = mineral, True
        else:
            m, is_label = _pick(SCENE_NEIGHBOURS[mineral], rng), False
        fills = SCENE_FILLS["gold" if gold else "pyrite"] if m == "pyrite" else ("pit",)
        fill = str(rng.choice(fills))
        d = min(float(np.sqrt(area / AREA_FACTOR.get(m, 0.6))), cap)
        parts = make_mineral(m, rng.uniform(0, size, 2), d, rng, im, upp, fill=fill)
        b.add(parts, Z_ORDER[m] + (0.01 if is_label else 0.0), is_label)
        if m in ("pyrite", "arsenopyrite", "chalcopyrite"):
            hosts += parts[0]
    if gold:
        _add_gold(b, hosts, rng, upp, float(rng.uniform(0.06, 0.3)) * coverage * size * size)
    lay = b.layout(matrix)
    # enforce the naming rule: gold visible in gold scenes (add blebs); otherwise the label covers the
    # largest ore area and at least 3 % of the field (drop the intruder that covers most, or add a body)
    label_code, min_px = CODE_OF[mineral], (max(20.0, 0.004 * size * size) if gold else 0.03 * size * size)
    drop: set[int] = set()
    added = 0
    for _ in range(len(b.items) + 8):
        idx, grains = rasterize(lay, -margin, -margin, size + 2 * margin, size + 2 * margin)
        inner = idx[margin : margin + size, margin : margin + size]
        per_grain = np.bincount(inner.ravel(), minlength=len(grains))
        codes = np.array([g.code for g in grains], np.int64)
        counts = np.bincount(codes, weights=per_grain, minlength=256)
        small = counts[label_code] < min_px
        if gold:
            if not small or added >= 6 or not hosts:
                break
            _add_gold(b, hosts, rng, upp, min_px - counts[label_code] + 1)
            added += 1
        else:
            rival = max(ORE_CODES - {label_code}, key=lambda c: counts[c])
            if not small and counts[label_code] >= counts[rival]:
                break
            if small and added < 3:
                d = float(np.sqrt(0.06 * size * size / AREA_FACTOR.get(mineral, 0.6)))
                b.add(make_mineral(mineral, rng.uniform(0.2, 0.8, 2) * size, d, rng, im, upp), Z_ORDER[mineral] + 0.02, True)
                added += 1
            else:
                area_of = {id(g): n for g, n in zip(grains, per_grain)}
                cands = [(sum(area_of.get(id(g), 0) for g in it[2] + it[3] if g.code == rival), k)
                         for k, it in enumerate(b.items) if not it[1] and k not in drop]
                cands = [c for c in cands if c[0] > 0]
                if not cands:
                    break
                drop.add(max(cands)[1])
        lay = b.layout(matrix, drop)
    lay.scratches = make_scratches(rng, 0, 0, size, size, float(rng.uniform(10.0, 50.0)), upp)
    lay.um_per_px = upp
    return lay


def _start_cell(seed: int, salt: int, cx: int, cy: int, cell: int, matrix: Grain,
                upp: float) -> tuple[np.random.Generator, int, int, _Builder]:
    """A section cell's own generator (seeded by section seed, mode salt and cell position) and its gangue."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, salt, cy & 0xFFFFFFFF, cx & 0xFFFFFFFF])
    x0, y0 = cx * cell, cy * cell
    b = _Builder()
    _gangue(b, matrix, rng, x0, y0, cell, cell, upp)
    return rng, x0, y0, b


def compose_cell(seed: int, cx: int, cy: int, cell: int, classes: tuple[str, ...], im: Imaging,
                 upp: float, matrix: Grain) -> list:
    """Items ``(z, grains, features, scratches)`` of one section cell, from its own seeded generator."""
    rng, x0, y0, b = _start_cell(seed, 101, cx, cy, cell, matrix, upp)
    weights = np.array([ABUNDANCE[c] for c in classes])
    mineral = str(classes[int(rng.choice(len(classes), p=weights / weights.sum()))])
    coverage = rng.uniform(0.0, 0.45) * (0.1 if mineral == "gold" else 1.0)
    cap = 0.75 * cell
    label_parts: list[habits.Parts] = []
    assoc = [k for k, p in ASSOCIATIONS[mineral] if rng.random() < p and _allowed(k, classes)]
    fill = next((k.split(":")[1] for k in assoc if k.startswith("fill:")), "pit")
    _place_label_grains(b, mineral, assoc, fill, label_parts, rng, im, upp, cap, coverage * cell * cell, 60,
                        lambda rng: np.array([x0 + rng.uniform(0, cell), y0 + rng.uniform(0, cell)]),
                        (x0, y0, cell, cell))
    items = [(z, gs, fs, []) for z, _, gs, fs in b.items]
    items.append((99.0, [], [], make_scratches(rng, x0, y0, cell, cell, float(rng.uniform(10.0, 50.0)), upp)))
    return items


def compose_mixed_cell(seed: int, cx: int, cy: int, cell: int, classes: tuple[str, ...], im: Imaging,
                       upp: float, matrix: Grain) -> list:
    """A ``mixed`` section cell: 2-4 minerals side by side, associations twice as likely (gold locked in
    pyrite/arsenopyrite, chalcopyrite/gold filling fractures), so no cell has one dominant mineral.

    Its own seed stream (salt 202), so ``mixed`` sections never share cells with the default mode."""
    rng, x0, y0, b = _start_cell(seed, 202, cx, cy, cell, matrix, upp)
    weights = np.array([ABUNDANCE[c] for c in classes])
    k = min(len(classes), int(rng.integers(2, 5)))
    picks = rng.choice(len(classes), size=k, replace=False, p=weights / weights.sum())
    for mineral in (str(classes[int(i)]) for i in picks):
        coverage = rng.uniform(0.02, 0.15) * (0.3 if mineral == "gold" else 1.0)
        assoc = [a for a, p in ASSOCIATIONS[mineral] if rng.random() < min(1.0, 2 * p) and _allowed(a, classes)]
        fill = next((a.split(":")[1] for a in assoc if a.startswith("fill:")), "pit")
        _place_label_grains(b, mineral, assoc, fill, [], rng, im, upp, 0.4 * cell, coverage * cell * cell, 30,
                            lambda rng: np.array([x0 + rng.uniform(0, cell), y0 + rng.uniform(0, cell)]),
                            (x0, y0, cell, cell))
    items = [(z, gs, fs, []) for z, _, gs, fs in b.items]
    items.append((99.0, [], [], make_scratches(rng, x0, y0, cell, cell, float(rng.uniform(0.3, 2.0)))))
    return items


#: Section layout modes: ``cells`` (one dominant mineral per 512-px cell) and ``mixed``.
CELL_COMPOSERS = {"cells": compose_cell, "mixed": compose_mixed_cell}


def _allowed(kind: str, classes: tuple[str, ...]) -> bool:
    name = kind.split(":")[-1]
    if kind == "gold_in_host":
        name = "gold"
    return name in classes or name in ("quartz_crystals", "pit")
