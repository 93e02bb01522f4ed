"""Prediction and attribution from ONE forward/backward pass, for the Space and the explain command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .layers import AttributionModel
from .methods import attribute_with_logits
from .render import model_view, overlay


@dataclass
class Explanation:
    """What the Space shows: calibrated probabilities, decisions, Grad-CAM maps and the model's view."""

    probs: np.ndarray  # (N, C)
    predictions: list  # predict.Prediction per image (with its open-set score when the predictor has one)
    maps: np.ndarray  # (N, H, W) >= 0, at the model's input size
    views: list[np.ndarray]  # HxWx3 uint8, the images as the model saw them

    def overlays(self, alpha: float = 0.5, cmap: str = "jet") -> list[Image.Image]:
        return [overlay(v, m, alpha=alpha, cmap=cmap) for v, m in zip(self.views, self.maps)]


class Explainer:
    """Prediction + Grad-CAM from one forward/backward pass, reusing a ``Predictor``'s model,
    preprocessing, temperature and unknown threshold (cheaper than pipeline() + a separate Captum pass)."""

    def __init__(self, predictor: Any, method: str = "gradcam") -> None:
        if getattr(predictor, "onnx", None) is not None or predictor.model is None:
            raise ValueError("attribution needs torch's gradients: build the Predictor with backend='torch' "
                             f"(this one runs {predictor.backend})")
        self.predictor = predictor
        self.method = method
        self.wrapper = AttributionModel(predictor.model)

    def explain(self, images: Sequence[Any], target: Any = None, top_k: int = 3, **opts: Any) -> Explanation:
        """Explain the predicted class (or ``target``) for PIL images / arrays / paths."""
        from ..imageio import load_image

        imgs = [im if isinstance(im, (Image.Image, np.ndarray, torch.Tensor)) else load_image(im) for im in images]
        cfg = self.predictor.data_config
        pixel_values = self.predictor.preprocess(imgs)
        maps, logits = attribute_with_logits(self.wrapper, pixel_values, target, self.method,
                                             data_config=cfg, batch_size=self.predictor.batch_size, **opts)
        probs = self.predictor.probabilities(torch.from_numpy(logits))  # the one softmax(logits / T)
        ood = None
        if self.predictor.ood is not None:  # one plain forward pass: the attribution pass keeps no features
            ood = self.predictor.ood_scores(pixel_values, self.predictor.forward(pixel_values)[1])
        preds = self.predictor.decide(probs, top_k=top_k, ood_scores=ood)
        return Explanation(probs, preds, maps, [model_view(im, cfg) for im in imgs])


def interactive_options(method: str, side: int) -> dict[str, Any]:
    """Settings that keep the slower methods interactive on a CPU (the Space's presets): integrated
    gradients with 16 steps in one batch; occlusion with a window of 1/4 of the ``side`` px model input
    moved by 1/8 (7x7 = 49 passes); Grad-CAM needs none."""
    if method == "integrated_gradients":
        return {"n_steps": 16, "internal_batch_size": 16}
    if method == "occlusion":
        return {"window": max(4, side // 4), "stride": max(2, side // 8), "perturbations_per_eval": 16}
    return {}
