"""The one predictor: CLI, Space, mapper, evaluator, explainer and benchmarks all classify through it.

Batched, ``torch.inference_mode``, preprocessing on tensors via ``preprocessing.eval_transform``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .imageio import load_image
from .modeling import load_classifier, load_processor
from .preprocessing import DataConfig, eval_transform

UNKNOWN = "unknown"


@dataclass
class Prediction:
    """Top-k answer for one image; ``label`` is ``unknown`` when the top score is under the threshold."""

    label: str
    score: float
    top_k: list[dict[str, float | str]]


class Predictor:
    """Wraps a classifier + its data config for batched inference."""

    def __init__(
        self,
        model: torch.nn.Module,
        data_config: DataConfig,
        *,
        batch_size: int = 32,
        num_threads: int | None = None,
        temperature: float = 1.0,
        unknown_threshold: float | None = None,
    ) -> None:
        self.model = model.eval()
        self.data_config = data_config
        self.batch_size = batch_size
        self.temperature = float(temperature)
        self.unknown_threshold = unknown_threshold
        if num_threads:
            torch.set_num_threads(num_threads)
        cfg = model.config
        self.id2label: dict[int, str] = {int(k): v for k, v in cfg.id2label.items()}
        self.labels: list[str] = [self.id2label[i] for i in range(len(self.id2label))]

    @classmethod
    def from_pretrained(cls, model_id: str | os.PathLike, **kwargs: Any) -> Predictor:
        """Load model + processor from a Hub id or local folder (safetensors only)."""
        model = load_classifier(model_id)
        cfg = DataConfig.from_processor(load_processor(model_id))
        return cls(model, cfg, **kwargs)

    # -- core ---------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image | np.ndarray | torch.Tensor] | torch.Tensor) -> torch.Tensor:
        return eval_transform(images, self.data_config)

    @torch.inference_mode()
    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Raw logits for preprocessed pixel values, in batches."""
        outs = [self.model(pixel_values=chunk).logits.float() for chunk in pixel_values.split(self.batch_size)]
        return torch.cat(outs, dim=0)

    def iter_probabilities(self, images: Iterable[Any]) -> Iterator[np.ndarray]:
        """Yield (n, C) calibrated probability arrays batch by batch (streams; memory bounded by batch)."""
        batch: list[Any] = []
        for im in images:
            batch.append(im if isinstance(im, (torch.Tensor, np.ndarray, Image.Image)) else load_image(im))
            if len(batch) == self.batch_size:
                yield self._proba(batch)
                batch = []
        if batch:
            yield self._proba(batch)

    def _proba(self, batch: Sequence[Any] | torch.Tensor) -> np.ndarray:
        logits = self.logits(self.preprocess(batch))
        return torch.softmax(logits / self.temperature, dim=-1).numpy()

    def predict_proba(self, images: Iterable[Any]) -> np.ndarray:
        """(N, C) probabilities for images (PIL, arrays, uint8 tensors or paths)."""
        parts = list(self.iter_probabilities(images))
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(self.labels)), np.float32)

    def decide(self, probs: np.ndarray, top_k: int = 3) -> list[Prediction]:
        """Turn probability rows into labelled predictions, applying the unknown threshold."""
        out = []
        k = min(top_k, probs.shape[1])
        for row in probs:
            order = np.argsort(-row)[:k]
            top = [{"label": self.labels[i], "score": float(row[i])} for i in order]
            best = float(row[order[0]])
            label = self.labels[order[0]]
            if self.unknown_threshold is not None and best < self.unknown_threshold:
                label = UNKNOWN
            out.append(Prediction(label=label, score=best, top_k=top))
        return out

    def predict(self, images: Iterable[Any], top_k: int = 3) -> list[Prediction]:
        return self.decide(self.predict_proba(images), top_k=top_k)
