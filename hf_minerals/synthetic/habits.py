"""Grain habits: the shapes each mineral takes in a polished section, with its internal features.

Each ``make_<mineral>`` returns ``(grains, features)`` for one crystal or aggregate centred at ``c``
with characteristic diameter ``d`` px (see MINERAL_OPTICS.md section 4 for the habits modelled).
"""

from __future__ import annotations

import numpy as np

from .layout import Grain
from .optics import sample_reflectance, stibnite_reflectance

Rng = np.random.Generator
Parts = tuple[list[Grain], list[Grain]]


# ----------------------------------------------------------------------------- shape primitives
def polygon(n: int, r: float, angle: float, c: np.ndarray, rng: Rng, jitter: float = 0.03,
            aspect: float = 1.0) -> np.ndarray:
    """Regular n-gon (optionally stretched), vertices jittered by ``jitter`` x r: euhedral sections."""
    t = angle + np.arange(n) * 2 * np.pi / n
    pts = np.stack([r * aspect * np.cos(t), r * np.sin(t)], 1)
    pts += rng.normal(0, jitter * r, pts.shape)
    return _rotate(pts, angle) + c


def roughen(pts: np.ndarray, rng: Rng, amp: float, step: float = 5.0) -> np.ndarray:
    """Subdivide the outline every ~``step`` px and jitter the new points by ~``amp`` px across the edge:
    real grain boundaries are chipped and ragged at the pixel scale, not ruler-straight."""
    if amp <= 0 or np.ptp(pts[:, 0]) + np.ptp(pts[:, 1]) < 4 * step:  # too small to show
        return pts
    seg = np.concatenate([pts[1:], pts[:1]]) - pts
    length = np.hypot(seg[:, 0], seg[:, 1])
    k = np.clip(np.ceil(length / step).astype(int), 1, 64)
    i = np.repeat(np.arange(len(pts)), k)
    start = np.repeat(np.cumsum(k) - k, k)
    t = (np.arange(len(i)) - start) / k[i]
    out = pts[i] + seg[i] * t[:, None]
    normal = np.stack([-seg[i, 1], seg[i, 0]], 1) / np.maximum(length[i], 1e-6)[:, None]
    jit = rng.normal(0, amp, len(out))
    jit[t == 0] *= 0.3  # corners stay nearly sharp (euhedral)
    return out + normal * jit[:, None]


def _rotate(pts: np.ndarray, a: float) -> np.ndarray:
    ca, sa = np.cos(a), np.sin(a)
    return pts @ np.array([[ca, sa], [-sa, ca]])


def blob(r: float, c: np.ndarray, rng: Rng, rough: float = 0.25, n: int = 28, aspect: float = 1.0,
         angle: float = 0.0) -> np.ndarray:
    """Irregular rounded outline: a radius with a few random harmonics (blebs, anhedral masses)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(2, 7)
    amp = rough * rng.uniform(0.2, 1.0, len(k)) / k**0.8
    ph = rng.uniform(0, 2 * np.pi, len(k))
    rad = r * (1 + (amp[None, :] * np.cos(k[None, :] * t[:, None] + ph[None, :])).sum(1))
    rad = np.maximum(rad, 0.25 * r)
    pts = np.stack([rad * np.cos(t) * aspect, rad * np.sin(t)], 1)
    return _rotate(pts, angle) + c


def lath(length: float, width: float, angle: float, c: np.ndarray, rng: Rng, taper: float = 0.3) -> np.ndarray:
    """Elongated blade with slightly ragged, tapering ends (stibnite laths, arsenopyrite needles)."""
    hl, hw = length / 2, width / 2
    e1 = hl * (1 + rng.uniform(0, taper))
    e2 = hl * (1 + rng.uniform(0, taper))
    pts = np.array([[-hl, -hw], [hl, -hw * rng.uniform(0.6, 1.0)], [e1, rng.uniform(-0.5, 0.5) * hw],
                    [hl, hw * rng.uniform(0.6, 1.0)], [-hl, hw], [-e2, rng.uniform(-0.5, 0.5) * hw]])
    return _rotate(pts, angle) + c


def chord(c: np.ndarray, r: float, rng: Rng, wiggle: float = 0.08, n: int = 6) -> np.ndarray:
    """A crooked line crossing a disc of radius r about c (fractures, veinlets)."""
    a = rng.uniform(0, np.pi)
    off = rng.uniform(-0.6, 0.6) * r
    s = np.linspace(-1.2 * r, 1.2 * r, n)
    pts = np.stack([s, np.full(n, off) + rng.normal(0, wiggle * r, n)], 1)
    return _rotate(pts, a) + c


def blobs(centres: np.ndarray, radii: np.ndarray, rng: Rng, rough: float = 0.3, n: int = 8,
          aspect: np.ndarray | float = 1.0, angle: np.ndarray | float = 0.0) -> np.ndarray:
    """Many small irregular outlines at once, shape (k, n, 2): pits, micro-inclusions, exsolution blebs."""
    k = len(centres)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)[None, :]
    rad = radii[:, None] * (1 + rough * rng.uniform(-0.5, 0.5, (k, n)))
    ang = np.broadcast_to(np.asarray(angle, float), (k,))[:, None]
    asp = np.broadcast_to(np.asarray(aspect, float), (k,))[:, None]
    x, y = rad * np.cos(t) * asp, rad * np.sin(t)
    ca, sa = np.cos(ang), np.sin(ang)
    return np.stack([x * ca - y * sa, x * sa + y * ca], -1) + centres[:, None, :]


def pits(host: Grain, c: np.ndarray, r: float, n: int, size: float, rng: Rng) -> list[Grain]:
    """Pluck pits inside ``host``: one cluster grain (drawing many tiny shapes as one object is fast)."""
    if n <= 0:
        return []
    shapes = blobs(c + rng.uniform(-r, r, (n, 2)), np.maximum(size * rng.uniform(0.5, 1.5, n), 0.8), rng, 0.5, 9)
    return [Grain("pit", shapes, sample_reflectance("pit", rng)[0], host=host)]


def _fractures(host: Grain, c: np.ndarray, r: float, n: int, fill: str, rng: Rng, upp: float = 1.0) -> list[Grain]:
    """Fractures across ``host``: open ones 1-3 um wide, filled ones 1.5-6 um (at least 1 px)."""
    out = []
    for _ in range(n):
        phase = fill if fill != "pit" or rng.random() < 0.8 else "pit"
        w = max(1.0, (rng.uniform(1.0, 3.0) if phase == "pit" else rng.uniform(1.5, 6.0)) / upp)
        out.append(Grain(phase, chord(c, r, rng), sample_reflectance(phase, rng)[0], width=w, host=host))
    return out


# ----------------------------------------------------------------------------- minerals
def make_pyrite(c: np.ndarray, d: float, rng: Rng, fill: str = "pit", pit_px: float = 2.0, upp: float = 1.0) -> Parts:
    """Euhedral cube/pyritohedron sections (squares, triangles, hexagons) with fractures, pits, zoning."""
    r = d / 2
    kind = rng.choice(["square", "rect", "triangle", "hexagon", "pentagon"], p=[0.4, 0.12, 0.15, 0.2, 0.13])
    n = {"square": 4, "rect": 4, "triangle": 3, "hexagon": 6, "pentagon": 5}[kind]
    aspect = rng.uniform(1.2, 1.8) if kind == "rect" else 1.0
    pts = roughen(polygon(n, r, rng.uniform(0, 2 * np.pi), c, rng, 0.03, aspect), rng, 0.35)
    g = Grain("pyrite", pts, sample_reflectance("pyrite", rng)[0])
    feats: list[Grain] = []
    if rng.random() < 0.35:  # arsenian or porous core: slightly different reflectance
        core = c + (pts - c) * rng.uniform(0.4, 0.7)
        feats.append(Grain("pyrite", core, g.refl * rng.uniform(0.96, 0.985), host=g))
        if rng.random() < 0.5:
            feats += pits(g, c, 0.4 * r, int(rng.integers(5, 20)), min(0.6 * pit_px, 0.03 * d), rng)
    feats += _fractures(g, c, r, int(rng.poisson(1.2 if d * upp > 40 else 0.3)), fill, rng, upp)
    feats += pits(g, c, 0.7 * r, int(rng.poisson(min(2 + d * upp / 30, 2 + d / 8))), min(pit_px, 0.04 * d), rng)
    return [g], feats


def make_arsenopyrite(c: np.ndarray, d: float, rng: Rng, pit_px: float = 2.0, upp: float = 1.0) -> Parts:
    """Rhombs/lozenges, prisms and needles; weak bireflectance twins and compositional zoning."""
    a = rng.uniform(0, np.pi)
    kind = rng.choice(["rhomb", "prism", "needle"], p=[0.5, 0.3, 0.2])
    if kind == "rhomb":
        half = np.deg2rad(rng.uniform(25, 35))
        L = d / 2
        pts = np.array([[L, 0], [0, L * np.tan(half)], [-L, 0], [0, -L * np.tan(half)]]) + rng.normal(0, 0.02 * L, (4, 2))
        pts = _rotate(pts, a) + c
    elif kind == "prism":
        L, W = d / 2, d / 2 / rng.uniform(2, 3.5)
        pts = _rotate(np.array([[L, 0], [0.7 * L, W], [-0.7 * L, W], [-L, 0], [-0.7 * L, -W], [0.7 * L, -W]]), a) + c
    else:
        pts = lath(d * 1.3, d * 1.3 / rng.uniform(6, 14), a, c, rng, taper=0.4)
    refl = sample_reflectance("arsenopyrite", rng)[0]
    pts = roughen(pts, rng, 0.35)
    g = Grain("arsenopyrite", pts, refl)
    if rng.random() < 0.35:  # lamellar twins: weak bireflectance (about 1 %)
        g.alt_refl = refl * rng.uniform(0.97, 0.99)
        g.lamellae = (a + rng.uniform(-0.3, 0.3), max(2.0, rng.uniform(3, 9) / upp), rng.uniform(0.3, 0.6), 0.0)
    feats: list[Grain] = []
    if rng.random() < 0.5:  # zoning: Sb/Co-bearing core a shade different
        feats.append(Grain("arsenopyrite", c + (pts - c) * rng.uniform(0.45, 0.75), refl * rng.uniform(0.965, 1.02), host=g))
    feats += _fractures(g, c, d / 2, int(rng.poisson(0.5)), "pit", rng, upp)
    feats += pits(g, c, 0.3 * d, int(rng.poisson(min(1 + d * upp / 60, 1 + d / 15))), min(pit_px, 0.04 * d), rng)
    return [g], feats


def make_stibnite(c: np.ndarray, d: float, rng: Rng, polarizer: float = 0.0, upp: float = 1.0) -> Parts:
    """Bladed laths or a radiating sheaf; brightness R1..R2 from each lath's angle to the polarizer,
    with bent polysynthetic twin lamellae of the other orientation inside."""
    grains: list[Grain] = []
    if rng.random() < 0.5:  # radiating sheaf from a common root
        root = c + rng.normal(0, 0.2 * d, 2)
        base = rng.uniform(0, 2 * np.pi)
        angles = base + rng.uniform(-0.5, 0.5, int(rng.integers(3, 9)))
    else:
        root, angles = None, np.array([rng.uniform(0, np.pi)])
    for ang in angles:
        length = d * rng.uniform(0.7, 1.6)
        width = length / rng.uniform(3, 12)
        centre = c if root is None else root + length / 2 * np.array([np.cos(ang), np.sin(ang)])
        theta = ang - polarizer + rng.normal(0, 0.15)
        twin_theta = theta + rng.uniform(0.6, 1.4) * rng.choice([-1, 1])
        refl = stibnite_reflectance(rng, np.array([theta]))[0]
        alt = stibnite_reflectance(rng, np.array([twin_theta]))[0]
        lam = None
        if rng.random() < 0.7:
            lam = (ang + np.pi / 2 + rng.normal(0, 0.35), max(2.0, rng.uniform(4, 14) / upp), rng.uniform(0.25, 0.6),
                   rng.uniform(0, 5) / upp)
        pts = roughen(lath(length, width, ang, centre, rng), rng, 0.5, 4.0)
        grains.append(Grain("stibnite", pts, refl, alt_refl=alt, lamellae=lam))
    return grains, []


def make_gold(c: np.ndarray, d: float, rng: Rng, host: Grain | None = None) -> Parts:
    """Irregular rounded bleb; electrum (Ag-rich) is paler. Clipped to ``host`` when it is an inclusion."""
    refl = sample_reflectance("gold", rng)[0]
    if rng.random() < 0.2:  # electrum: flatter, paler spectrum
        refl = refl * (1 - rng.uniform(0.05, 0.15)) + rng.uniform(0.03, 0.08) * np.array([1.0, 0.4, 0.1, 0.0], np.float32)
    pts = blob(d / 2, c, rng, rng.uniform(0.15, 0.45), 24, rng.uniform(0.7, 1.3), rng.uniform(0, np.pi))
    g = Grain("gold", roughen(pts, rng, 0.4, 4.0), refl.astype(np.float32), host=host)
    return ([], [g]) if host is not None else ([g], [])


def make_chalcopyrite(c: np.ndarray, d: float, rng: Rng, pit_px: float = 2.0) -> Parts:
    """Anhedral, concave mass that fills the space left by earlier crystals."""
    pts = blob(d / 2, c, rng, rng.uniform(0.35, 0.6), 40, rng.uniform(0.6, 1.5), rng.uniform(0, np.pi))
    g = Grain("chalcopyrite", roughen(pts, rng, 0.7, 4.0), sample_reflectance("chalcopyrite", rng)[0])
    feats = pits(g, c, 0.3 * d, int(rng.poisson(0.5)), min(pit_px, 0.03 * d), rng)
    return [g], feats


def make_galena(c: np.ndarray, d: float, rng: Rng, pit_px: float = 3.0) -> Parts:
    """Subhedral mass with rows of triangular cleavage pits, one orientation per grain."""
    n = int(rng.integers(5, 9))
    pts = roughen(polygon(n, d / 2, rng.uniform(0, np.pi), c, rng, 0.12, rng.uniform(0.8, 1.3)), rng, 0.6)
    g = Grain("galena", pts, sample_reflectance("galena", rng)[0])
    feats: list[Grain] = []
    a = rng.uniform(0, np.pi / 2)
    tri = polygon(3, 1.0, a, np.zeros(2), rng, 0.05)  # one pit orientation per grain
    rows = int(rng.integers(2, 6 + int(d / 15)))
    axis = a + np.pi / 2 * rng.integers(0, 2, rows)  # the two cubic cleavage traces
    starts = c + rng.uniform(-0.6, 0.6, (rows, 2)) * d / 2
    per = rng.integers(2, 9, rows)
    which = np.repeat(np.arange(rows), per)
    k = np.concatenate([np.arange(p) for p in per])
    step = pit_px * rng.uniform(2, 4, rows)
    pos = starts[which] + (k * step[which])[:, None] * np.stack([np.cos(axis[which]), np.sin(axis[which])], 1)
    pos += rng.normal(0, 0.3 * pit_px, pos.shape)
    scale = pit_px * rng.uniform(0.6, 1.3, len(pos))
    shapes = tri[None] * scale[:, None, None] + pos[:, None, :]
    feats = [Grain("pit", shapes, sample_reflectance("pit", rng)[0], host=g)]
    return [g], feats


def make_sphalerite(c: np.ndarray, d: float, rng: Rng, disease: float = 1.0, upp: float = 1.0) -> Parts:
    """Anhedral grain with internal reflections and 'chalcopyrite disease' (oriented micro-blebs)."""
    pts = roughen(blob(d / 2, c, rng, rng.uniform(0.25, 0.5), 32, rng.uniform(0.7, 1.4), rng.uniform(0, np.pi)), rng, 0.7, 4.0)
    g = Grain("sphalerite", pts, sample_reflectance("sphalerite", rng)[0], internal=rng.uniform(0.5, 1.0))
    feats: list[Grain] = []
    bleb = rng.uniform(0.5, 1.3) / upp  # bleb radius, px (0.5-1.3 um): invisible at low power
    n = min(int(disease * rng.uniform(0.004, 0.02) * (d * upp) ** 2), 800) if bleb >= 0.4 else 0
    if n:  # blebs aligned in rows along two crystallographic directions
        cp = sample_reflectance("chalcopyrite", rng)[0]
        a = rng.uniform(0, np.pi)
        rows = max(1, n // 8)
        starts = c + rng.uniform(-0.55, 0.55, (rows, 2)) * d
        dirs = a + rng.choice([0.0, np.pi / 2], rows)
        k = rng.integers(0, 8, n)
        which = rng.integers(0, rows, n)
        step = rng.uniform(2.0, 4.0) * bleb / 0.8
        pos = starts[which] + (k * step)[:, None] * np.stack([np.cos(dirs[which]), np.sin(dirs[which])], 1)
        pos += rng.normal(0, 0.6 * bleb, (n, 2))
        shapes = blobs(pos, bleb * rng.uniform(0.6, 1.4, n), rng, 0.3, 6, rng.uniform(1.0, 2.2, n), dirs[which])
        feats.append(Grain("chalcopyrite", shapes, cp, host=g))
    return [g], feats


def make_gangue_crystal(c: np.ndarray, d: float, rng: Rng, phase: str = "quartz") -> Grain:
    """Euhedral quartz (hexagon) or carbonate (rhomb) crystal: dark, used to make sulfides interstitial."""
    n = 6 if phase == "quartz" else 4
    pts = roughen(polygon(n, d / 2, rng.uniform(0, np.pi), c, rng, 0.06, rng.uniform(1.0, 1.8)), rng, 0.5)
    return Grain(phase, pts, sample_reflectance(phase, rng)[0], internal=rng.uniform(0.2, 0.6))
