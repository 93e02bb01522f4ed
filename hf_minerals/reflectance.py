"""Reflectance-standard calibration, as petrographers do it: raw pixels -> reflectance (%).

A dark frame ``D`` (lamp off or shutter closed: the sensor offset) and a white frame ``W`` (a polished
reflectance standard of known reflectance ``R_ref``, e.g. SiC ~20 % or WTiC ~46 %, photographed with the
same lamp, objective, camera settings and exposure as the samples) turn every pixel into reflectance::

    R = R_ref * (I - D) / (W - D)        (per channel, in linear light: sRGB is decoded first)

The white frame also carries the lamp colour, white balance, exposure and vignetting of the session, so
all of these divide out (the image-acquisition protocol of Minerals 2024, 14(1), 51). Frames are lightly
smoothed (noise) and resized to the image when the camera binned differently (same aspect ratio only).

``hf-minerals calibrate-images --dark D --white W --reference_reflectance R --inputs IN... --output_dir DIR`` writes, per
image, ``<name>.png`` (8-bit sRGB of R / ``display_max``: 255 = 100 % by default, what models are trained
on) and ``<name>.reflectance.npy`` (float32 %, H x W x 3) unless ``--no_npy``. The Predictor, the mapper
and the Space take the same calibration as an option (``reflectance=``), and ``build-dataset`` takes
calibrated folders (calibrate first: masks, mapping and metadata files are copied unchanged).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .imageio import ImageLoadError, is_image_file, load_image

#: Approximate reflectance in air (%) of common standards near 546 nm; use the certificate of yours.
STANDARDS: dict[str, float] = {"SiC": 20.5, "WTiC": 46.0, "spinel": 7.2, "silicon": 36.5}
CLIP_LEVEL = 254  # raw 8-bit values at or above this are saturated: their reflectance is a lower bound

_LUT = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    """8-bit sRGB -> linear float32 (lookup)."""
    return _LUT[np.asarray(img, np.uint8)]


def linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    x = np.clip(lin, 0.0, 1.0)
    return np.round(255 * np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)).astype(np.uint8)


def _smooth(frame: np.ndarray, size: int = 5) -> np.ndarray:
    """Box-average each channel of a float frame over ``size`` x ``size`` px, edges replicated (the standard
    is flat: this only averages noise away). Cumulative sums: no SciPy needed where the Space runs this."""
    r = size // 2
    x = np.pad(frame.astype(np.float64), ((r + 1, r), (r + 1, r), (0, 0)), mode="edge")
    x[0, :], x[:, 0] = 0, 0
    c = x.cumsum(0).cumsum(1)
    h, w = frame.shape[:2]
    out = c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
    return (out[:h, :w] / (size * size)).astype(np.float32)


def _band(frame: np.ndarray, y0: int, y1: int, height: int, width: int) -> np.ndarray:
    """Rows ``y0:y1`` of ``frame`` resized to a ``width`` x ``height`` field, without building the whole field
    (a 20k x 20k section only ever holds one band of it)."""
    fh, fw = frame.shape[:2]
    if (fh, fw) == (height, width):
        return frame[y0:y1]
    if abs(fw / fh - width / height) > 0.01 * (width / height):
        raise ValueError(f"calibration frames are {fw}x{fh} but the image is {width}x{height}: different aspect ratio, "
                         "so they were not taken with the same camera field; photograph dark/white frames for it")
    box = (0.0, y0 * fh / height, float(fw), y1 * fh / height)
    return np.stack([np.asarray(Image.fromarray(frame[..., c], "F").resize((width, y1 - y0), Image.Resampling.BILINEAR, box))
                     for c in range(3)], -1)


@dataclass
class ReflectanceCalibration:
    """Dark and white frames (linear, smoothed) and the white standard's reflectance (%, 1 or 3 values)."""

    dark: np.ndarray  # (H, W, 3) float32 linear
    white: np.ndarray  # (H, W, 3) float32 linear
    reference: tuple[float, float, float]
    display_max: float = 100.0  # reflectance (%) shown as 255 in the 8-bit output
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(cls, dark: np.ndarray, white: np.ndarray, reference: float | Sequence[float],
                    display_max: float = 100.0) -> ReflectanceCalibration:
        """From 8-bit sRGB frames (H x W x 3 arrays); ``reference`` in % (one value or one per channel)."""
        ref = tuple(float(x) for x in np.broadcast_to(np.asarray(reference, float), (3,)))
        if not all(0 < r <= 100 for r in ref):
            raise ValueError(f"reference reflectance must be in (0, 100] %, got {reference}")
        d, w = (np.asarray(f)[..., :3] for f in (dark, white))
        if d.shape != w.shape:
            raise ValueError(f"dark frame {d.shape[1]}x{d.shape[0]} and white frame {w.shape[1]}x{w.shape[0]} differ in size")
        dl, wl = _smooth(srgb_to_linear(d)), _smooth(srgb_to_linear(w))
        if np.median(wl - dl) <= 0.01:
            raise ValueError("the white frame is not brighter than the dark frame (median difference <= 1 % of full "
                             "scale): were the frames swapped, or the lamp off for the white frame?")
        if (w >= CLIP_LEVEL).mean() > 0.01:
            raise ValueError("the white frame is saturated (> 1 % of pixels at 254-255): lower the exposure for the "
                             "standard or use a darker standard (e.g. SiC instead of WTiC)")
        return cls(dl.astype(np.float32), wl.astype(np.float32), ref, float(display_max))

    @classmethod
    def load(cls, dark: str | Path, white: str | Path, reference: float | Sequence[float],
             display_max: float = 100.0) -> ReflectanceCalibration:
        return cls.from_frames(np.asarray(load_image(dark)), np.asarray(load_image(white)), reference, display_max)

    def _frames(self, y0: int, y1: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        key = (y0, y1, height, width)
        if key not in self._cache:
            self._cache.clear()
            d, w = _band(self.dark, y0, y1, height, width), _band(self.white, y0, y1, height, width)
            self._cache[key] = (d, np.maximum(w - d, 1e-4))
        return self._cache[key]

    def reflectance(self, image: np.ndarray | Image.Image, y0: int = 0, frame_height: int | None = None) -> np.ndarray:
        """(H, W, 3) float32 reflectance (%) of an 8-bit sRGB image; rows ``y0..`` of a frame-sized field."""
        img = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)[..., :3]
        h, w = img.shape[:2]
        d, span = self._frames(y0, y0 + h, frame_height or h, w)
        return (srgb_to_linear(img) - d) / span * np.asarray(self.reference, np.float32)

    def to_image(self, image: np.ndarray | Image.Image, y0: int = 0, frame_height: int | None = None) -> np.ndarray:
        """8-bit sRGB of reflectance / ``display_max`` (255 = ``display_max`` %): what a model sees."""
        return linear_to_srgb8(self.reflectance(image, y0, frame_height) / self.display_max)

    def to_dict(self) -> dict:
        return {"reference_reflectance": list(self.reference), "display_max": self.display_max,
                "frame_size": [int(self.dark.shape[1]), int(self.dark.shape[0])]}


def calibrate_paths(inputs: Sequence[str | Path], output: str | Path, cal: ReflectanceCalibration,
                    save_npy: bool = True) -> dict:
    """Calibrate images (files, or folders walked recursively keeping relative paths) into ``output``.

    In folders, anything under a ``masks``/``labels`` folder and every non-image file (mapping, metadata)
    is copied unchanged, so a calibrated image folder or mask set builds like the original. Unreadable
    images are reported, not fatal. Returns a summary (also written to ``output/calibration.json``)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    done, failed, copied = [], [], 0
    for item in map(Path, inputs):
        if item.is_dir():
            jobs = [(p, p.relative_to(item)) for p in sorted(item.rglob("*")) if p.is_file()]
        elif item.is_file():
            jobs = [(item, Path(item.name))]
        else:
            failed.append({"path": str(item), "error": "no such file or folder"})
            continue
        for src, rel in jobs:
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not is_image_file(src) or any(part in ("masks", "labels") for part in rel.parts[:-1]):
                if src.resolve() != dst.resolve():
                    shutil.copyfile(src, dst)
                copied += 1
                continue
            try:
                raw = np.asarray(load_image(src))
            except ImageLoadError as exc:
                failed.append({"path": str(src), "error": exc.reason})
                continue
            try:
                refl = cal.reflectance(raw)
            except ValueError as exc:
                failed.append({"path": str(src), "error": str(exc)})
                continue
            png = dst.with_suffix(".png")
            Image.fromarray(linear_to_srgb8(refl / cal.display_max)).save(png)
            if save_npy:
                np.save(dst.with_suffix(".reflectance.npy"), refl.astype(np.float32))
            done.append({"path": str(src), "output": str(png), "clipped_fraction": round(float((raw >= CLIP_LEVEL).any(-1).mean()), 5),
                         "median_reflectance": [round(float(x), 3) for x in np.median(refl.reshape(-1, 3), 0)]})
    summary = {"calibration": cal.to_dict(), "images": done, "failed": failed, "copied_files": copied}
    (out / "calibration.json").write_text(json.dumps(summary, indent=1))
    return summary


def reference_value(text: Sequence[str]) -> float | list[float]:
    """``20.5``, ``20.9 20.5 20.1`` (per channel) or a standard's name (``SiC``, ``WTiC``...)."""
    if len(text) == 1 and text[0] in STANDARDS:
        return STANDARDS[text[0]]
    try:
        vals = [float(t) for t in text]
    except ValueError:
        raise ValueError(f"--reference_reflectance: give a % value, three per-channel values, or one of {sorted(STANDARDS)}") from None
    if len(vals) not in (1, 3):
        raise ValueError("--reference_reflectance takes one value or three (R G B)")
    return vals[0] if len(vals) == 1 else vals


@dataclass
class ReflectanceArguments:
    """The calibration flags, shared by calibrate-images, predict and map (all three or none)."""

    dark: str | None = field(default=None, metadata={"help": "dark frame (lamp off / shutter closed)"})
    white: str | None = field(default=None, metadata={"help": "frame of the reflectance standard, same lamp/objective/exposure"})
    reference_reflectance: list[str] | None = field(
        default=None, metadata={"help": f"the standard's reflectance in percent (one value, three R G B values, or one of {sorted(STANDARDS)})"}
    )


def from_args(args: ReflectanceArguments) -> ReflectanceCalibration | None:
    """The calibration the flags ask for, or None; half-given flags are an error."""
    given = [args.dark is not None, args.white is not None, args.reference_reflectance is not None]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--dark, --white and --reference_reflectance go together")
    return ReflectanceCalibration.load(args.dark, args.white, reference_value(args.reference_reflectance))


@dataclass
class CalibrateImagesArguments:
    """``hf-minerals calibrate-images``: raw photomicrographs -> reflectance (%) with a dark frame and a white standard."""

    inputs: list[str] = field(metadata={"help": "image files or folders (walked recursively; masks/ and other files copied)"})
    output_dir: str = field(metadata={"help": "output folder (PNG + .reflectance.npy per image, calibration.json, args.yaml)"})
    display_max: float = field(default=100.0, metadata={"help": "reflectance (percent) shown as 255 in the PNGs"})
    no_npy: bool = field(default=False, metadata={"help": "skip the float32 .reflectance.npy files"})


def main(argv: list[str] | None = None) -> int:
    from .cli_args import parse_command_line, save_args

    args, refl_args = parse_command_line([CalibrateImagesArguments, ReflectanceArguments], argv,
                                         prog="hf-minerals calibrate-images")
    try:
        cal = from_args(refl_args)
        if cal is None:
            raise ValueError("--dark, --white and --reference_reflectance are required")
        cal.display_max = float(args.display_max)
        summary = calibrate_paths(args.inputs, args.output_dir, cal, save_npy=not args.no_npy)
    except (ValueError, ImageLoadError) as exc:
        sys.exit(f"hf-minerals calibrate-images: error: {exc}")
    save_args(Path(args.output_dir) / "args.yaml", args, refl_args, command="hf-minerals calibrate-images")
    for f in summary["failed"]:
        print(f"hf-minerals calibrate-images: skipped {f['path']}: {f['error']}", file=sys.stderr)
    print(f"calibrated {len(summary['images'])} image(s), {len(summary['failed'])} failed, "
          f"{summary['copied_files']} other file(s) copied -> {args.output_dir}")
    return 0
