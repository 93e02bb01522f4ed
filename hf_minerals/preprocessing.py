"""The one preprocessing factory: everything that feeds a model asks it (trainer, evaluator,
predictor, Space, mapper, explainer, benchmarks), so a fix lands everywhere.

Like timm's ``resolve_data_config``, the input geometry and normalisation are read from the
model's own image processor (``size``, ``crop_pct``/``crop_size``, ``image_mean``, ``image_std``),
then applied with plain torch ops on uint8 tensors - no torchvision, no per-image PIL round trip.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .imageio import array_to_rgb8, load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig:
    """Input geometry and normalisation of a model.

    ``resize_shortest`` set: resize the shortest edge to it (aspect kept), then centre-crop ``crop``.
    ``resize_shortest`` None: resize straight to ``crop`` (aspect not kept), like ViT/Swin processors.
    """

    crop: tuple[int, int] = (224, 224)  # (height, width) the model sees
    resize_shortest: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"  # "bilinear" | "bicubic"

    @classmethod
    def from_processor(cls, processor: Any) -> DataConfig:
        """Read the config from a transformers image processor (ViT/Swin, ConvNext/ResNet, MobileNetV2...)."""
        d = processor.to_dict() if hasattr(processor, "to_dict") else dict(processor)
        size = d.get("size") or {}
        if not isinstance(size, dict):
            size = {"height": int(size), "width": int(size)}
        mean = tuple(float(x) for x in (d.get("image_mean") or IMAGENET_MEAN))
        std = tuple(float(x) for x in (d.get("image_std") or IMAGENET_STD))
        resample = d.get("resample", 2)
        resample = int(getattr(resample, "value", resample) or 2)
        interpolation = "bicubic" if resample == 3 else "bilinear"
        crop_size = d.get("crop_size") or {}
        if "height" in size and "width" in size and not d.get("do_center_crop"):
            return cls((int(size["height"]), int(size["width"])), None, mean, std, interpolation)
        if "shortest_edge" in size:
            edge = int(size["shortest_edge"])
            if d.get("do_center_crop") and crop_size:
                return cls((int(crop_size["height"]), int(crop_size["width"])), edge, mean, std, interpolation)
            crop_pct = d.get("crop_pct")
            if crop_pct and edge < 384:  # ConvNext processor rule
                return cls((edge, edge), int(edge / crop_pct), mean, std, interpolation)
            return cls((edge, edge), None, mean, std, interpolation)
        if crop_size:
            return cls((int(crop_size["height"]), int(crop_size["width"])), None, mean, std, interpolation)
        raise ValueError(f"cannot read an input size from image processor {type(processor).__name__}: {size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aspect_preserving_processor(processor: Any) -> Any:
    """The one input geometry of every architecture, as an image processor ``pipeline()`` understands.

    Short side resized to the model's input side, then a centre crop of that side: a 4:3 photograph
    keeps its proportions (grain shapes are diagnostic) and every architecture sees the same pixels at
    the same scale. The model's own mean, std and resampling filter are kept. Written as a
    ``BitImageProcessor`` config (resize shortest edge + centre crop), so the saved
    ``preprocessor_config.json`` gives ``pipeline()`` exactly what ``DataConfig`` gives the Predictor.
    """
    from transformers import BitImageProcessor

    cfg = DataConfig.from_processor(processor)
    side = max(cfg.crop)
    d = processor.to_dict() if hasattr(processor, "to_dict") else dict(processor)
    return BitImageProcessor(
        do_resize=True,
        size={"shortest_edge": side},
        resample=int(getattr(d.get("resample", 2), "value", d.get("resample", 2)) or 2),
        do_center_crop=True,
        crop_size={"height": cfg.crop[0], "width": cfg.crop[1]},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(cfg.mean),
        image_std=list(cfg.std),
        do_convert_rgb=True,
    )


def to_uint8_tensor(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """HxWx3 uint8 (PIL/numpy) or 3xHxW tensor -> 3xHxW uint8 tensor, without copying where possible."""
    if isinstance(image, torch.Tensor):
        t = image
        if t.ndim == 3 and t.shape[-1] == 3 and t.shape[0] != 3:
            t = t.permute(2, 0, 1)
        return t
    if isinstance(image, Image.Image) and image.mode != "RGB":
        image = load_image(image, max_pixels=sys.maxsize)  # 16-bit scaled, alpha on black: as every door does
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim == 2 or arr.shape[-1] != 3:
        arr = array_to_rgb8(arr)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, copy=True, order="C")
    return torch.from_numpy(arr).permute(2, 0, 1)


def shortest_edge_size(h: int, w: int, edge: int) -> tuple[int, int]:
    """(height, width) with the short side ``edge`` and the aspect kept, truncated like transformers'
    ``get_resize_output_image_size`` so the Predictor and ``pipeline()`` crop the very same pixels."""
    if h <= w:
        return edge, int(edge * w / h)
    return int(edge * h / w), edge


def resize_crop(batch: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Float Bx3xHxW (0-255) -> Bx3xcrop (0-255) by the config's resize (+ centre crop)."""
    h, w = batch.shape[-2:]
    ch, cw = cfg.crop
    if cfg.resize_shortest is None:
        target = (ch, cw)
    else:
        th, tw = shortest_edge_size(h, w, cfg.resize_shortest)
        target = (max(ch, th), max(cw, tw))
    if (h, w) != target:
        batch = F.interpolate(batch, size=target, mode=cfg.interpolation, align_corners=False, antialias=True)
        batch = batch.clamp(0, 255)  # bicubic overshoots at edges; image processors clip to the pixel range too
    th, tw = batch.shape[-2:]
    if (th, tw) != (ch, cw):
        top, left = (th - ch) // 2, (tw - cw) // 2
        batch = batch[..., top : top + ch, left : left + cw]
    return batch


def normalize(batch: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """0-255 float -> model input (rescale 1/255, subtract mean, divide by std)."""
    mean = torch.tensor(cfg.mean, dtype=batch.dtype).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(cfg.std, dtype=batch.dtype).view(1, 3, 1, 1) * 255.0
    return (batch - mean) / std


def eval_transform(images: list | torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Deterministic evaluation preprocessing: images -> Bx3xHxW float32 pixel_values.

    A uint8 Bx3xHxW tensor (e.g. mapper tiles) is processed as one batch; a list of images of
    different sizes is resized one by one and stacked.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return normalize(resize_crop(images.float(), cfg), cfg).contiguous()
    out = [resize_crop(to_uint8_tensor(im).unsqueeze(0).float(), cfg) for im in images]
    return normalize(torch.cat(out, dim=0), cfg).contiguous()


# -- training augmentation ------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the training augmentation (plain torch; every draw from a ``torch.Generator``).

    All randomness goes through torch (never ``random`` or numpy), from the generator passed to
    :func:`train_transform`. The trainer passes one seeded by (seed, epoch, sample index), so a
    resumed run, or one with more workers or processes, sees exactly the same augmented images.

    Colour augmentation works in LINEAR light, the way the microscope changes a photo: exposure
    (one gain for the whole photo, +-``exposure_ev`` EV), white balance / lamp colour (one gain per
    channel, up to +-``white_balance`` in log units), a camera picture style (``color_jitter`` = s: chroma
    scaled by [1-s, 1+s] about the luminance) and optionally a tone-curve gamma. All but gamma keep the
    reflectance RATIOS between phases in a photo (pyrite stays brighter than pyrrhotite beside it), which
    is what a petrographer reads; exposure and lamp colour, which differ from lab to lab, are what the
    model must learn to ignore. There is no contrast jitter and no hue rotation (both change those
    ratios). Random erasing fills with a gangue-like colour (the image's own dark phase), not a mean.
    """

    scale: tuple[float, float] = (0.35, 1.0)  # random resized crop: area fraction of the source
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # ... and aspect ratio range
    hflip: float = 0.5
    vflip: float = 0.5  # sections have no "up": vertical flips and 90-degree turns are free
    rot90: bool = True
    rotation: float = 15.0  # extra small rotation, +-degrees (reflection padding, no black corners)
    color_jitter: float = 0.1  # picture-style chroma strength s, see above; 0 turns it off
    exposure_ev: float = 1.0  # +- EV of the per-photo exposure gain (linear light); 0 turns it off
    white_balance: float = 0.15  # +- log gain per channel (lamp colour / white-balance error); 0 turns it off
    gamma: float = 0.0  # +- relative tone-curve change (changes reflectance ratios: off by default)
    #: probability that a sample is shown as its photo-normalised view (``colour.py``) instead of raw
    #: (then no photometric jitter: that view is invariant to it); for models used with photo_views
    photo_view: float = 0.0
    erasing: float = 0.25  # probability of one random-erasing rectangle (filled with a gangue-like colour)
    erasing_scale: tuple[float, float] = (0.02, 0.15)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _uniform(lo: float, hi: float, n: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _crop_box(h: int, w: int, aug: AugmentConfig, g: torch.Generator | None) -> tuple[int, int, int, int]:
    """Random resized crop box (top, left, height, width) as in Inception/timm, 10 tries then centre."""
    area = h * w
    log_r = torch.log(torch.tensor(aug.ratio))
    for _ in range(10):
        target = area * float(_uniform(*aug.scale, generator=g))
        ratio = float(torch.exp(_uniform(float(log_r[0]), float(log_r[1]), generator=g)))
        cw, ch = round((target * ratio) ** 0.5), round((target / ratio) ** 0.5)
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            return top, left, ch, cw
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side


def _rotate(batch: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of a Bx3xHxW batch about its centre; reflection padding keeps texture at corners."""
    rad = torch.deg2rad(degrees).to(batch.dtype)
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


_LUMA = torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """0-255 sRGB floats -> linear light in [0, 1]."""
    v = x / 255.0
    return torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light (clipped to [0, 1], like a sensor) -> 0-255 sRGB floats."""
    x = x.clamp(0.0, 1.0)
    return 255.0 * torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def _photometric(batch: torch.Tensor, aug: AugmentConfig, g: torch.Generator | None) -> torch.Tensor:
    """Exposure, white balance, picture style (and optional gamma) in linear light on 0-255 sRGB floats."""
    b = batch.shape[0]
    lin = srgb_to_linear(batch)
    gain = torch.ones(b, 3)
    if aug.exposure_ev > 0:
        gain = gain * (2.0 ** _uniform(-aug.exposure_ev, aug.exposure_ev, b, g)).view(b, 1)
    if aug.white_balance > 0:
        wb = _uniform(-aug.white_balance, aug.white_balance, 3 * b, g).view(b, 3)
        gain = gain * torch.exp(wb - wb.mean(1, keepdim=True))  # colour only: exposure is drawn above
    lin = lin * gain.view(b, 3, 1, 1)
    if aug.color_jitter > 0:
        s = _uniform(1 - aug.color_jitter, 1 + aug.color_jitter, b, g).view(b, 1, 1, 1)
        lum = (lin * _LUMA).sum(1, keepdim=True)
        lin = lum + s * (lin - lum)
    if aug.gamma > 0:
        lin = lin.clamp_min(0.0) ** (1 + _uniform(-aug.gamma, aug.gamma, b, g)).view(b, 1, 1, 1)
    return linear_to_srgb(lin)


def _erase(batch: torch.Tensor, aug: AugmentConfig, g: torch.Generator | None) -> torch.Tensor:
    """Random erasing on 0-255 images: one rectangle filled with a gangue-like colour (the image's own
    10th-percentile colour plus a little noise), so erasing looks like more matrix, not a grey card."""
    _, _, h, w = batch.shape
    for i in range(batch.shape[0]):
        if float(torch.rand(1, generator=g)) >= aug.erasing:
            continue
        area = h * w * float(_uniform(*aug.erasing_scale, generator=g))
        ratio = float(torch.exp(_uniform(-1.2, 1.2, generator=g)))  # log(1/3.3) .. log(3.3)
        eh, ew = min(h, max(1, round((area / ratio) ** 0.5))), min(w, max(1, round((area * ratio) ** 0.5)))
        top = int(torch.randint(0, h - eh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - ew + 1, (1,), generator=g))
        fill = torch.quantile(batch[i].reshape(3, -1), 0.1, dim=1).view(3, 1, 1)
        noise = torch.randn(3, eh, ew, generator=g) * 2.0
        batch[i, :, top : top + eh, left : left + ew] = (fill + noise).clamp(0, 255)
    return batch


def train_transform(
    images: list | torch.Tensor,
    cfg: DataConfig,
    aug: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
    references: Any = None,
) -> torch.Tensor:
    """Random training preprocessing: images -> Bx3xHxW float32 pixel_values in the model's geometry.

    Same output geometry and normalisation as :func:`eval_transform` (both read ``cfg``), with
    random resized crop, flips, 90-degree and small rotations, linear-light photometric jitter
    (exposure, white balance, picture style) and random erasing on top. ``generator`` None draws from
    torch's global RNG. With ``aug.photo_view`` > 0, that share of samples is shown photo-normalised,
    by ``references`` (one linear white reference per image, e.g. of the whole source photo of a patch)
    or, when None, by the reference of the image itself.
    """
    from .colour import normalise_batch, photo_reference

    aug = aug or AugmentConfig()
    g = generator
    ch, cw = cfg.crop
    crops = []
    views: list[int] = []
    refs: list[torch.Tensor] = []
    for k, im in enumerate(images):
        t = to_uint8_tensor(im)
        if aug.photo_view > 0 and float(torch.rand(1, generator=g)) < aug.photo_view:
            views.append(k)
            ref = references[k] if references is not None else photo_reference(t)
            refs.append(torch.as_tensor(np.asarray(ref, np.float32)))
        h, w = t.shape[-2:]
        top, left, bh, bw = _crop_box(h, w, aug, g)
        x = t[:, top : top + bh, left : left + bw].unsqueeze(0).float()
        x = F.interpolate(x, size=(ch, cw), mode=cfg.interpolation, align_corners=False, antialias=True)
        if float(torch.rand(1, generator=g)) < aug.hflip:
            x = x.flip(-1)
        if float(torch.rand(1, generator=g)) < aug.vflip:
            x = x.flip(-2)
        if aug.rot90 and ch == cw:
            x = torch.rot90(x, int(torch.randint(0, 4, (1,), generator=g)), dims=(-2, -1))
        crops.append(x)
    batch = torch.cat(crops, dim=0)
    if aug.rotation > 0:
        batch = _rotate(batch, _uniform(-aug.rotation, aug.rotation, batch.shape[0], g))
    if aug.color_jitter > 0 or aug.exposure_ev > 0 or aug.white_balance > 0 or aug.gamma > 0:
        jittered = _photometric(batch, aug, g)
        if views:  # the normalised view is invariant to photometric jitter: keep those samples as they were
            keep = torch.zeros(batch.shape[0], dtype=torch.bool)
            keep[views] = True
            jittered[keep] = batch[keep]
        batch = jittered
    if views:
        batch[views] = normalise_batch(batch[views], torch.stack(refs))
    batch = batch.clamp(0, 255)
    if aug.erasing > 0:
        batch = _erase(batch, aug, g)
    return normalize(batch, cfg).contiguous()
