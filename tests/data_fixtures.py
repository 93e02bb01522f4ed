"""Tiny image folders and mask sets for the data tests, built with PIL/numpy (no files shipped)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

#: A distinct base colour per mineral so classes are easy to tell apart in assertions.
COLOURS = {"pyrite": (230, 220, 150), "chalcopyrite": (220, 200, 60), "galena": (200, 200, 210),
           "arsenopyrite": (235, 235, 230), "stibnite": (180, 180, 190), "sphalerite": (120, 120, 125)}


def noisy(colour, seed: int, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour)[None, None, :] + rng.integers(-25, 25, (size, size, 3)), 0, 255)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def make_folder(root: Path, classes=("pyrite", "chalcopyrite", "galena"), per_class: int = 8, specimens: int = 4,
                size: int = 32, metadata: bool = False, split_dirs: tuple[str, ...] = ()) -> Path:
    """``root/<class>/<specimen>_<i>.png``; ``per_class`` images spread over ``specimens`` specimens."""
    rows = []
    seed = 0
    targets = [(root / d, d) for d in split_dirs] or [(root, "")]
    for base, prefix in targets:
        for c in classes:
            (base / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                spec = f"{c[:3]}{i % specimens}"
                name = f"{spec}_{i}.png"
                noisy(COLOURS[c], seed, size).save(base / c / name)
                seed += 1
                rows.append({"file_name": str(Path(prefix) / c / name) if prefix else f"{c}/{name}", "specimen": spec})
    if metadata:
        (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def add_bad_files(root: Path) -> dict[str, str]:
    """The bad-input zoo, inside existing class folders; returns {relative path: expected reason fragment or 'ok'}."""
    py, cp, ga = root / "pyrite", root / "chalcopyrite", root / "galena"
    out: dict[str, str] = {}
    good = jpeg_bytes(noisy(COLOURS["pyrite"], 900, 64))
    (py / "truncated.jpg").write_bytes(good[: len(good) // 2])
    out["pyrite/truncated.jpg"] = "truncated"
    (py / "zero.png").write_bytes(b"")
    out["pyrite/zero.png"] = "empty"
    (cp / "notes.png").write_text("this is not an image\n")
    out["chalcopyrite/notes.png"] = "not an image"
    (cp / "readme.txt").write_text("lab notes")
    out["chalcopyrite/readme.txt"] = "unsupported file type"
    big = Image.new("RGB", (300, 300), COLOURS["galena"])
    big.save(ga / "huge.png")
    out["galena/huge.png"] = "too many pixels"
    # converted, not skipped:
    arr16 = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(arr16).save(ga / "sixteen.tif")
    out["galena/sixteen.tif"] = "ok"
    noisy(COLOURS["pyrite"], 901).convert("CMYK").save(py / "cmyk.jpg")
    out["pyrite/cmyk.jpg"] = "ok"
    noisy(COLOURS["chalcopyrite"], 902).convert("P", palette=Image.ADAPTIVE).save(cp / "palette.png")
    out["chalcopyrite/palette.png"] = "ok"
    noisy(COLOURS["galena"], 903).convert("RGBA").save(ga / "rgba.png")
    out["galena/rgba.png"] = "ok"
    noisy(COLOURS["pyrite"], 904).convert("L").save(py / "grey.bmp")
    out["pyrite/grey.BMP"] = "ok"
    (py / "grey.bmp").rename(py / "grey.BMP")
    wide = noisy(COLOURS["chalcopyrite"], 905, 32).resize((64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    wide.save(cp / "rotated.jpg", exif=exif)
    out["chalcopyrite/rotated.jpg"] = "ok"
    # an exact duplicate of an existing image, under another name and specimen
    src = sorted(py.glob("pyr*_0.png"))[0]
    (py / "copy_of_first.png").write_bytes(src.read_bytes())
    out["pyrite/copy_of_first.png"] = "ok"
    return out


def make_mask_set(root: Path, n_photos: int = 4, size: tuple[int, int] = (96, 64), mapping: dict | None = None,
                  mapping_format: str = "json") -> Path:
    """LumenStone-style set: images/ + masks/ (8-bit codes) + mapping file. Left half one mineral, right another."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    mapping = mapping or {0: "background", 1: "chalcopyrite", 2: "galena", 6: "pyrite", 20: "quartz"}
    w, h = size
    pairs = [(1, 6), (2, 1), (6, 2), (1, 2), (2, 6), (6, 1)]
    for k in range(n_photos):
        a, b = pairs[k % len(pairs)]
        mask = np.zeros((h, w), np.uint8)
        mask[:, : w // 2] = a
        mask[:, w // 2:] = b
        mask[: h // 4, w // 2:] = 20  # quartz (background phase) in the top right
        img = np.zeros((h, w, 3), np.uint8)
        rng = np.random.default_rng(k)
        names = {c: n for c, n in mapping.items()}
        for code in np.unique(mask):
            colour = COLOURS.get(names.get(int(code), ""), (40, 40, 40))
            sel = mask == code
            img[sel] = np.clip(np.array(colour) + rng.integers(-20, 20, (sel.sum(), 3)), 0, 255)
        Image.fromarray(img, "RGB").save(root / "images" / f"section_{k}.jpg", quality=95)
        Image.fromarray(mask, "L").save(root / "masks" / f"section_{k}.png")
    if mapping_format == "json":
        (root / "mapping.json").write_text(json.dumps({str(c): n for c, n in mapping.items()}))
    else:
        (root / "mapping.txt").write_text("# code name\n" + "".join(f"{c} {n}\n" for c, n in mapping.items()))
    return root


def rows(dsd) -> list[tuple]:
    """(split, label name, group, source_path, crop_box) for every row."""
    out = []
    for split, ds in dsd.items():
        names = ds.features["label"].names
        for row in ds.remove_columns("image"):
            out.append((split, names[row["label"]], row["group"], row["source_path"], tuple(row["crop_box"])))
    return out
