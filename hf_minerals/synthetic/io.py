"""Writing synthetic data sets (image folder + masks + mapping + metadata) and the gallery figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from ..minerals import ALL_SYNTHETIC_MINERALS, MASK_CODES, PAPER_MINERALS, map_color
from .render import calibration_frames as render_calibration_frames
from .render import render_scene
from .shifts import SHIFTS

MAX_PER_CLASS = 1_000_000


def scene_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th scene of a folder written with base ``seed`` (unique per base seed)."""
    return int(seed) * MAX_PER_CLASS + int(index)


def write_image_folder(output: str | Path, classes: Sequence[str] = PAPER_MINERALS, per_class: int = 10,
                       size: int = 224, seed: int = 0, shift: str | None = None, overwrite: bool = False,
                       progress: bool = True, calibration_frames: float | None = None) -> Path:
    """Write ``output/<mineral>/synthetic_<mineral>_<i>.png``, masks under ``output/masks/``,
    ``mapping.json`` ({code: name}) and ``metadata.jsonl`` (one line per image). Returns ``output``.

    Refuses to write into a folder that already holds a data set unless ``overwrite``.
    ``calibration_frames`` = R (%): also write each photo's dark frame and the frame of a white standard of
    reflectance R under ``calibration/`` (``hf-minerals calibrate-images`` input; names in the metadata).
    """
    out = Path(output)
    if not 1 <= per_class < MAX_PER_CLASS:
        raise ValueError(f"per_class must be in [1, {MAX_PER_CLASS}), got {per_class}")
    bad = [c for c in classes if c not in ALL_SYNTHETIC_MINERALS]
    if bad or not classes:
        raise ValueError(f"unknown or no classes {bad}; choose from {list(ALL_SYNTHETIC_MINERALS)}")
    if (out / "metadata.jsonl").exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a synthetic data set; pass overwrite=True (--overwrite) to replace it")
        _remove_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mapping.json").write_text(json.dumps({str(k): v for k, v in MASK_CODES.items()}, indent=1))
    jobs = [(m, i) for m in classes for i in range(per_class)]
    tag = f"_{shift}" if shift else ""
    with open(out / "metadata.jsonl", "w") as meta_f:
        for mineral, i in tqdm(jobs, desc="synthetic scenes", disable=not progress, unit="img"):
            s = scene_seed(seed, i)
            sc = render_scene(mineral, size=size, seed=s, shift=shift)
            name = f"synthetic_{mineral}{tag}_{i:05d}.png"
            rel = Path(mineral) / name
            (out / mineral).mkdir(exist_ok=True)
            (out / "masks" / mineral).mkdir(parents=True, exist_ok=True)
            Image.fromarray(sc.image).save(out / rel)
            Image.fromarray(sc.mask).save(out / "masks" / rel)
            row = {"file_name": rel.as_posix(), "mask_file_name": ("masks" / rel).as_posix(), "label": mineral,
                   "group": f"synthetic-{mineral}-{s}", "base_seed": int(seed), **sc.meta}
            if calibration_frames:
                (out / "calibration" / mineral).mkdir(parents=True, exist_ok=True)
                for kind, frame in zip(("dark", "white"), render_calibration_frames(sc, calibration_frames)):
                    frel = Path("calibration") / mineral / name.replace(".png", f"_{kind}.png")
                    Image.fromarray(frame).save(out / frel)
                    row[f"{kind}_file_name"] = frel.as_posix()
                row["reference_reflectance"] = float(calibration_frames)
            meta_f.write(json.dumps(row) + "\n")
    return out


def _remove_previous(out: Path) -> None:
    """Delete the images and masks a previous run listed in its metadata.jsonl (and nothing else),
    so a smaller re-run leaves no stale files behind."""
    for line in (out / "metadata.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        for key in ("file_name", "mask_file_name", "dark_file_name", "white_file_name"):
            rel = row.get(key)
            if isinstance(rel, str) and Path(rel).name.startswith("synthetic_") and ".." not in Path(rel).parts:
                (out / rel).unlink(missing_ok=True)


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Mask codes -> RGB with the project's map colours (gangue dark grey, pits black)."""
    lut = np.zeros((256, 3), np.uint8)
    for code, name in MASK_CODES.items():
        lut[code] = (60, 60, 60) if name in ("quartz", "carbonate", "resin") else (0, 0, 0) if name == "pit" else map_color(name)
    return lut[mask]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def make_gallery(path: str | Path, classes: Sequence[str] = ALL_SYNTHETIC_MINERALS, examples: int = 4,
                 size: int = 160, seed: int = 0, shifts: Sequence[str] = tuple(SHIFTS), palette: bool = True) -> Path:
    """Grid figure: one row per class (examples + mask of the first), then the paper classes photographed
    under the default and under each shift (same scenes, so only the imaging differs), titled SYNTHETIC.

    ``palette`` saves a dithered 256-colour PNG (4x smaller; fine for judging, not for measuring)."""
    shift_classes = [c for c in PAPER_MINERALS if c in classes] or list(classes)[:5]
    rows: list[tuple[str, list[np.ndarray]]] = []
    for m in classes:
        tiles = [render_scene(m, size, scene_seed(seed, i)) for i in range(examples)]
        rows.append((m, [t.image for t in tiles] + [colorize_mask(tiles[0].mask)]))
    for sh in (None, *shifts):
        rows.append((f"shift: {sh}" if sh else "default", [render_scene(m, size, scene_seed(seed, 0), sh).image for m in shift_classes]))
    pad, left, top = 4, 130, 56
    ncol = max(examples + 1, len(shift_classes))
    W = left + ncol * (size + pad) + pad
    H = top + len(rows) * (size + pad) + 22 + pad
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    d.text((pad + 4, 8), "SYNTHETIC reflected-light scenes (hf-minerals generator, not real photomicrographs)",
           fill=(180, 0, 0), font=_font(22))
    d.text((left, 36), "examples (seed 0..)  |  last column: label mask of the first", fill=(0, 0, 0), font=_font(14))
    for r, (name, tiles) in enumerate(rows):
        y = top + r * (size + pad)
        d.text((pad + 2, y + size // 2 - 8), name, fill=(0, 0, 0), font=_font(15))
        for c, t in enumerate(tiles):
            canvas.paste(Image.fromarray(t), (left + c * (size + pad), y))
        if name.startswith("default") or name.startswith("shift"):
            for c, m in enumerate(shift_classes):
                d.text((left + c * (size + pad) + 3, y + 2), m, fill=(255, 255, 0), font=_font(12))
    d.text((pad + 4, H - 22), "SYNTHETIC - colours from 4-band reflectance spectra x lamp x camera; see docs/synthetic.md",
           fill=(120, 120, 120), font=_font(13))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if palette:
        canvas = canvas.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    canvas.save(path, optimize=True)
    return path
