"""Photo-level colour context: the white reference of a whole photo, and the photo-normalised view.

Exposure and lamp colour differ from lab to lab and photo to photo; what stays is how bright and what
colour each phase is RELATIVE to the rest of its photo (pyrite brighter than pyrrhotite beside it). The
photo's white reference is the per-channel 99th percentile of the whole photo in linear light; the
normalised view divides every pixel by it (a von Kries / white-patch correction), so a halogen cast or a
+1 EV exposure leaves that view unchanged. Normalising alone hurts minerals that are themselves the
brightest phase of their photo (they always come out white), so the model sees BOTH views: it is trained
on raw and normalised photos alike, and the Predictor averages its answers on the two
(``Predictor(photo_views=True)``); ``pipeline("image-classification")`` sees the raw view only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

PERCENTILE = 99.0
TARGET = 0.8  # linear level the reference is mapped to (headroom for phases brighter than the 99th percentile)
MAX_SAMPLES = 1 << 18  # pixels sampled from big photos for the percentile

_LUT = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _as_array(image: np.ndarray | Image.Image | torch.Tensor) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        t = image if image.shape[-1] == 3 else image.permute(1, 2, 0)
        return t.to(torch.uint8).numpy()
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)[..., :3]


def photo_reference(image: np.ndarray | Image.Image | torch.Tensor) -> np.ndarray:
    """(3,) linear white reference of a whole 8-bit photo: per-channel 99th percentile (big photos sampled)."""
    arr = _as_array(image).reshape(-1, 3)
    if len(arr) > MAX_SAMPLES:
        arr = arr[:: len(arr) // MAX_SAMPLES + 1]
    return np.maximum(np.percentile(_LUT[arr], PERCENTILE, axis=0), 1e-3).astype(np.float32)


def normalise_batch(batch: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Bx3xHxW 0-255 sRGB floats -> the photo-normalised view (reference -> ``TARGET``), 0-255 sRGB floats."""
    from .preprocessing import linear_to_srgb, srgb_to_linear

    gain = (TARGET / references.clamp_min(1e-3)).view(-1, 3, 1, 1).to(batch.dtype)
    return linear_to_srgb(srgb_to_linear(batch) * gain)


def normalised_view(image: np.ndarray | Image.Image | torch.Tensor, reference: np.ndarray | None = None) -> np.ndarray:
    """HxWx3 uint8 photo-normalised copy of a photo (reference from the photo itself unless given)."""
    arr = _as_array(image)
    ref = photo_reference(arr) if reference is None else np.asarray(reference, np.float32)
    t = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).unsqueeze(0).float()
    out = normalise_batch(t, torch.from_numpy(ref).view(1, 3))
    return out[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def imaging_coordinates(references: np.ndarray) -> np.ndarray:
    """(N, 3) where photos lie in imaging space: log brightness and log R/G, log B/G of their white references
    (exposure moves the first, lamp colour and white balance the other two)."""
    log = np.log(np.maximum(np.asarray(references, np.float64).reshape(-1, 3), 1e-3))
    return np.stack([log.mean(1), log[:, 0] - log[:, 1], log[:, 2] - log[:, 1]], 1)


@dataclass
class ImagingEnvelope:
    """The range of exposure and lamp colour of the photos a model was trained on (their white references).

    Why: the raw view carries absolute colour, which the model knows only inside the imaging it saw; the
    photo-normalised view does not depend on it. For a photo outside this range (an uncorrected halogen
    lamp, a strong cast, a far exposure) the raw view extrapolates, so the Predictor answers from the
    normalised view alone there. Parameter-free: the box is the training photos' own min/max.
    """

    low: tuple[float, float, float]
    high: tuple[float, float, float]
    n: int = 0

    AXES = ("log_brightness", "log_r_over_g", "log_b_over_g")

    @classmethod
    def fit(cls, references: np.ndarray) -> ImagingEnvelope:
        c = imaging_coordinates(references)
        if len(c) == 0:
            raise ValueError("cannot fit an imaging envelope on no photos")
        return cls(tuple(float(v) for v in c.min(0)), tuple(float(v) for v in c.max(0)), len(c))

    def outside(self, references: np.ndarray) -> np.ndarray:
        """(N,) bool: which photos (by their white references) lie outside the training imaging."""
        c = imaging_coordinates(references)
        return ((c < np.asarray(self.low)) | (c > np.asarray(self.high))).any(1)

    def to_dict(self) -> dict[str, Any]:
        return {"axes": list(self.AXES), "low": list(self.low), "high": list(self.high), "n": self.n}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ImagingEnvelope:
        return cls(tuple(record["low"]), tuple(record["high"]), int(record.get("n", 0)))


def combine_views(raw: torch.Tensor, normalised: torch.Tensor, outside: np.ndarray | None = None) -> torch.Tensor:
    """Photo-views logits: the mean of the raw and normalised views, the normalised view alone where ``outside``
    (photos outside the training imaging, ``ImagingEnvelope.outside``)."""
    both = (raw + normalised) / 2
    if outside is None or not np.any(outside):
        return both
    return torch.where(torch.as_tensor(np.asarray(outside, bool))[:, None], normalised, both)


def split_references(split: Any, image_column: str = "image") -> np.ndarray:
    """(N, 3) white references of a ``datasets`` split: the stored whole-photo ``photo_reference`` column
    when the builder kept it, else each image's own."""
    if "photo_reference" in split.column_names:
        refs = [r for r in split["photo_reference"]]
        if all(r is not None for r in refs):
            return np.asarray(refs, np.float32).reshape(-1, 3)
    return np.stack([photo_reference(im) for im in split[image_column]])
