"""The microscope and camera: lamp, white balance, exposure, vignetting, blur, noise, JPEG.

Works on a window of a larger frame (``x0, y0`` inside a ``frame_w x frame_h`` field of view) so a big
section rendered tile by tile gets the same vignetting, gradient and noise as in one piece.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from .fields import GAUSS_LUT, noise_bytes
from .optics import INTERNAL_COLOUR, camera_matrix, illuminant, linear_to_srgb8, srgb8_to_linear
from .polish import Surface


@dataclass
class Imaging:
    """Everything the camera and microscope do to a scene; recorded in metadata."""

    field_um: float = 600.0  # field-of-view width (sets the magnification / grain scale)
    light: str = "led"  # daylight | led | halogen
    cct: float = 5600.0  # lamp colour temperature, K
    wb_light: str = "led"  # lamp the white balance was set for
    wb_cct: float = 5600.0
    wb_error: tuple[float, float, float] = (1.0, 1.0, 1.0)  # residual per-channel gain error
    exposure: float = 1.25  # linear gain: a 100 % reflector reads this (pyrite near white at ~1.7)
    vignetting: float = 0.2  # fractional darkening at the frame corners
    gradient: float = 0.08  # fractional illumination change across the frame
    gradient_angle: float = 0.0
    psf_sigma: float = 0.6  # optics + demosaic blur, px
    defocus_sigma: float = 0.0  # extra blur over the whole frame, px
    corner_defocus: float = 0.5  # extra blur at the corners (field curvature), px
    read_noise: float = 0.004  # sensor noise floor (linear units)
    shot_noise: float = 0.0004  # variance per unit signal (linear units)
    jpeg_quality: int = 0  # 0 = lossless; else JPEG quality with 4:2:0 chroma subsampling
    polarizer: float = 0.0  # polarizer azimuth (rad): sets which stibnite laths are bright
    saturation: float = 1.0  # camera picture-style colour boost (1 = colorimetric)
    dust: int = 0  # out-of-focus dust specks on the sensor (soft dark discs fixed in the frame)
    #: camera colour matrix error (3x3 row-major, rows sum to 1 so white stays white): another sensor's
    #: response, imperfectly corrected; identity = the reference camera
    colour_matrix: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    black_level: float = 0.0  # sensor offset (linear units): what a dark frame records

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (round(v, 5) if isinstance(v, float) else [round(x, 5) for x in v] if isinstance(v, tuple) else v)
                for k, v in d.items()}

    def blur_margin(self) -> int:
        """Pixels of context a window needs on each side so its blurs match the whole frame."""
        return int(np.ceil(3 * (np.hypot(self.psf_sigma, self.defocus_sigma) + self.corner_defocus))) + 4


_SRGB_OF_LEVEL = srgb8_to_linear(np.arange(256)).astype(np.float32)


def _noise_sigma_lut(im: Imaging) -> np.ndarray:
    """Noise std in 8-bit sRGB units for each 8-bit level (linear-domain shot + read noise, through the gamma)."""
    lin = _SRGB_OF_LEVEL.astype(np.float64)
    sigma_lin = np.sqrt(lin * im.shot_noise + im.read_noise**2)
    slope = np.gradient(np.arange(256.0), lin + 1e-6 * np.arange(256))  # d(level)/d(linear)
    return np.clip(sigma_lin * slope, 0, 40).astype(np.float32)


@lru_cache(maxsize=8)
def _frame_geometry(x0: int, y0: int, w: int, h: int, frame_w: int, frame_h: int):
    """Normalised window coordinates, squared radius (1 at the frame corner) and the corner-blur weight.
    Cached: every scene of a given size has the same window, and the arrays are never written to."""
    ys = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5 - frame_h / 2) / np.float32(frame_w / 2)
    xs = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5 - frame_w / 2) / np.float32(frame_w / 2)
    r2 = (xs[None, :] ** 2 + ys[:, None] ** 2) / np.float32(1 + (frame_h / frame_w) ** 2)
    wgt = (np.clip(r2 * 1.3 - 0.3, 0, 1) * 255).astype(np.uint8)
    for a in (xs, ys, r2, wgt):
        a.flags.writeable = False
    return xs, ys, r2, wgt


def _dust(n: int, seed: int, xs: np.ndarray, ys: np.ndarray, frame_w: int) -> np.ndarray:
    """Transmission of ``n`` out-of-focus dust specks: soft discs 0.5-2.5 % of the frame wide, 3-12 % dark."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 4242])
    out = np.ones((len(ys), len(xs)), np.float32)
    for _ in range(n):
        cx, cy = rng.uniform(-1, 1, 2)
        r = rng.uniform(0.01, 0.05)
        depth = rng.uniform(0.03, 0.12)
        d2 = ((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2) / r**2
        out *= 1 - depth * np.exp(-d2 * d2)
    return out


def saturation_matrix(s: float) -> np.ndarray:
    """3x3 linear-RGB matrix scaling chroma by ``s`` about Rec.709 luminance (a camera picture style)."""
    lum = np.array([0.2126, 0.7152, 0.0722], np.float32)
    return (s * np.eye(3, dtype=np.float32) + (1 - s) * np.ones((3, 1), np.float32) * lum[None, :]).astype(np.float32)


def _blur(img: Image.Image, psf_sigma: float, defocus_sigma: float) -> Image.Image:
    """Small Gaussian PSF as one fractional box pass ([r, 1, r] has variance 2r/(1+2r)); defocus as a
    box of matching variance (an out-of-focus PSF is a uniform disc, which a box approximates)."""
    if psf_sigma > 0.1:
        s2 = min(psf_sigma**2, 0.6)
        img = img.filter(ImageFilter.BoxBlur(s2 / (2 * (1 - s2))))
    if defocus_sigma > 0.3:
        img = img.filter(ImageFilter.BoxBlur(float(np.sqrt(3 * defocus_sigma**2 + 0.25) - 0.5)))
    return img


def expose(surf: Surface, im: Imaging, x0: int, y0: int, frame_w: int, frame_h: int, seed: int,
           local_noise: bool = False) -> np.ndarray:
    """Polished surface window -> 8-bit sRGB (h, w, 3), JPEG not yet applied.

    Colour is linear in reflectance, so each grain's spectrum goes through lamp, white balance and camera
    once (a (n, 3) table) and per-pixel work is a gather and a few multiplies. The optical blur runs on the
    gamma-encoded image (PIL, fast); sensor noise is added after it, scaled as it would be in linear light.
    """
    h, w = surf.idx.shape
    K = camera_matrix(illuminant(im.light, im.cct), illuminant(im.wb_light, im.wb_cct), im.exposure, im.wb_error)
    K = K @ (saturation_matrix(im.saturation) @ np.asarray(im.colour_matrix, np.float32).reshape(3, 3)).T
    refl = np.stack([g.refl for g in surf.grains]).astype(np.float32)
    rgb = (refl @ K)[surf.idx]
    if surf.twin is not None:
        alt = np.stack([g.alt_refl if g.alt_refl is not None else g.refl for g in surf.grains]).astype(np.float32) @ K
        rgb[surf.twin] = alt[surf.idx[surf.twin]]

    # illumination: vignetting (radial) and a linear gradient across the frame
    xs, ys, r2, corner_wgt = _frame_geometry(x0, y0, w, h, frame_w, frame_h)
    grad = np.float32(np.cos(im.gradient_angle)) * xs[None, :] + np.float32(np.sin(im.gradient_angle)) * ys[:, None]
    light = (1 - np.float32(im.vignetting) * r2) * (1 + np.float32(0.5 * im.gradient) * grad)
    if im.dust:
        light = light * _dust(im.dust, seed, xs, ys, frame_w)
    rgb *= (surf.shade * light)[:, :, None]
    if surf.glow is not None:
        ir = np.stack([INTERNAL_COLOUR.get(g.phase, (0, 0, 0, 0)) for g in surf.grains]).astype(np.float32) @ K
        on = np.nonzero(surf.glow)
        rgb[on] += (surf.glow[on] * light[on])[:, None] * ir[surf.idx[on]]
    if surf.rim is not None:  # (rows, cols) of pit-wall pixels
        rgb[surf.rim] += light[surf.rim][:, None] * (np.full(4, 0.12, np.float32) @ K)
    if im.black_level:
        rgb += np.float32(im.black_level)

    # optics: PSF (Gaussian-like) + defocus (disc-like box) everywhere, field-curvature blur towards the corners
    img = _blur(Image.fromarray(linear_to_srgb8(rgb)), im.psf_sigma, im.defocus_sigma)
    if im.corner_defocus > 0.2:
        far = _blur(img, 0.0, 2 * im.corner_defocus)
        img = Image.composite(far, img, Image.fromarray(corner_wgt))
    out = np.asarray(img)

    # sensor noise: shot (signal-dependent) + read, after the optics. Since the clean level is an integer,
    # round(level + noise) = level + round(noise): one (level, random byte) -> noisy level table does it all.
    table = np.clip(np.arange(256, dtype=np.float32)[:, None] + np.rint(_noise_sigma_lut(im)[:, None] * GAUSS_LUT[None, :]),
                    0, 255).astype(np.uint8)
    key = out.astype(np.uint16) << 8
    key |= noise_bytes(seed, 7, x0, y0, w, h, 3, local_noise)
    return table.ravel()[key]


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG with 4:2:0 chroma subsampling (smears the colour of small grains)."""
    if not quality:
        return img
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))
