"""The one preprocessing factory: everything that feeds a model asks it (trainer, evaluator,
predictor, Space, mapper, explainer, benchmarks), so a fix lands everywhere.

Like timm's ``resolve_data_config``, the input geometry and normalisation are read from the
model's own image processor (``size``, ``crop_pct``/``crop_size``, ``image_mean``, ``image_std``),
then applied with plain torch ops on uint8 tensors - no torchvision, no per-image PIL round trip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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


def to_uint8_tensor(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """HxWx3 uint8 (PIL/numpy) or 3xHxW tensor -> 3xHxW uint8 tensor, without copying where possible."""
    if isinstance(image, torch.Tensor):
        t = image
        if t.ndim == 3 and t.shape[-1] == 3 and t.shape[0] != 3:
            t = t.permute(2, 0, 1)
        return t
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, copy=True, order="C")
    return torch.from_numpy(arr).permute(2, 0, 1)


def resize_crop(batch: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Float Bx3xHxW (0-255) -> Bx3xcrop (0-255) by the config's resize (+ centre crop)."""
    h, w = batch.shape[-2:]
    ch, cw = cfg.crop
    if cfg.resize_shortest is None:
        target = (ch, cw)
    else:
        scale = cfg.resize_shortest / min(h, w)
        target = (max(ch, round(h * scale)), max(cw, round(w * scale)))
    if (h, w) != target:
        batch = F.interpolate(batch, size=target, mode=cfg.interpolation, align_corners=False, antialias=True)
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
