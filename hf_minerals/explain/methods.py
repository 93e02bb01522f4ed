"""Captum dispatch: Grad-CAM, Guided Grad-CAM, Integrated Gradients (optionally smoothed with a
NoiseTunnel) and occlusion, each returned as a non-negative per-pixel map at the model's input size."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..preprocessing import DataConfig, eval_transform
from .layers import AttributionModel

METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion")


# -- targets, preprocessing -------------------------------------------------------------------
def _resolve_target(model: nn.Module, target: Any, n: int) -> torch.Tensor | None:
    """None (predicted class), a class index or label, or one of those per image -> (n,) long tensor."""
    if target is None:
        return None
    label2id = {str(k): int(v) for k, v in (model.config.label2id or {}).items()}
    items = list(target) if isinstance(target, (list, tuple, np.ndarray, torch.Tensor)) else [target] * n
    if len(items) != n:
        raise ValueError(f"{len(items)} targets for {n} images")
    out = []
    for t in items:
        if isinstance(t, str):
            if t not in label2id:
                raise ValueError(f"unknown target label '{t}'; the model knows {sorted(label2id)}")
            t = label2id[t]
        t = int(t)
        if not 0 <= t < model.config.num_labels:
            raise ValueError(f"target class {t} out of range 0..{model.config.num_labels - 1}")
        out.append(t)
    return torch.tensor(out, dtype=torch.long)


def _as_pixel_values(images: Any, data_config: DataConfig | None) -> torch.Tensor:
    """A float (B, 3, H, W) tensor passes as is; anything else goes through ``eval_transform``."""
    if isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point():
        return images.detach().clone()
    if data_config is None:
        raise ValueError(
            "raw images need the model's preprocessing: pass data_config=DataConfig.from_processor(load_processor(id)) "
            "or a Predictor as the model"
        )
    if isinstance(images, (Image.Image, np.ndarray)) or (isinstance(images, torch.Tensor) and images.ndim == 3):
        images = [images]
    return eval_transform(images, data_config).detach().clone()


# -- methods ----------------------------------------------------------------------------------
class _Recorder(nn.Module):
    """Logits of the wrapped model, kept from the pass Captum runs; with ``target=None`` it returns
    the logit of the predicted class, so Grad-CAM for the prediction needs no extra forward pass."""

    def __init__(self, wrapper: AttributionModel, predicted: bool) -> None:
        super().__init__()
        self.wrapper, self.predicted, self.logits = wrapper, predicted, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.wrapper(x)
        if self.logits is None:  # the first (unperturbed) pass
            self.logits = logits.detach()
        return logits.gather(1, logits.argmax(1, keepdim=True)) if self.predicted else logits


def _baseline(x: torch.Tensor, kind: str, cfg: DataConfig | None) -> torch.Tensor:
    if kind == "mean":  # the processor's mean colour: 0 after normalisation
        return torch.zeros_like(x)
    if kind == "black":
        cfg = cfg or DataConfig()
        mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
        return (-mean / std).expand_as(x).to(x.dtype).contiguous()
    raise ValueError(f"baseline must be 'mean' or 'black', not {kind!r}")


def _run_method(wrapper: AttributionModel, x: torch.Tensor, target: torch.Tensor | None, method: str,
                cfg: DataConfig | None, opts: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (B, H, W) >= 0, logits (B, C)) for one batch."""
    with warnings.catch_warnings():  # Captum warns that it sets requires_grad / ReLU hooks: by design here
        warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
        return _run_captum(wrapper, x, target, method, cfg, opts)


def _run_captum(wrapper: AttributionModel, x: torch.Tensor, target: torch.Tensor | None, method: str,
                cfg: DataConfig | None, opts: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    from captum.attr import GuidedGradCam, IntegratedGradients, LayerGradCam, NoiseTunnel, Occlusion

    h, w = x.shape[-2:]
    logits = None
    if method != "gradcam":  # one plain pass for the logits (and what to explain); Grad-CAM records its own
        with torch.no_grad():
            logits = wrapper(x).detach()
        target = logits.argmax(1) if target is None else target
    rec = _Recorder(wrapper, predicted=target is None)
    tgt = 0 if target is None else target
    if method == "gradcam":
        cam = LayerGradCam(rec, wrapper.layer).attribute(x, target=tgt, relu_attributions=True)
        maps = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    elif method == "guided_gradcam":
        attr = GuidedGradCam(rec, wrapper.layer).attribute(x, target=tgt, interpolate_mode="bilinear")
        if attr.shape != x.shape:
            raise RuntimeError(f"Guided Grad-CAM failed to upsample the {wrapper.layer_name} map to {tuple(x.shape)}")
        maps = attr.abs().sum(1)
    elif method == "integrated_gradients":
        ig = IntegratedGradients(rec)
        kw = dict(baselines=_baseline(x, opts.get("baseline", "mean"), cfg), target=tgt,
                  n_steps=int(opts.get("n_steps", 32)), internal_batch_size=int(opts.get("internal_batch_size", 16)))
        if opts.get("noise_tunnel"):
            attr = NoiseTunnel(ig).attribute(x, nt_type="smoothgrad", nt_samples=int(opts.get("nt_samples", 8)),
                                             nt_samples_batch_size=1, stdevs=float(opts.get("stdevs", 0.2)), **kw)
        else:
            attr = ig.attribute(x, **kw)
        maps = attr.abs().sum(1)
    elif method == "occlusion":
        win = int(opts.get("window", max(4, min(h, w) // 8)))
        stride = int(opts.get("stride", max(1, win // 2)))
        attr = Occlusion(rec).attribute(x, sliding_window_shapes=(3, win, win), strides=(3, stride, stride),
                                        baselines=_baseline(x[:1], opts.get("baseline", "mean"), cfg)[0],
                                        target=tgt, perturbations_per_eval=int(opts.get("perturbations_per_eval", 16)))
        maps = attr.mean(1).clamp(min=0)  # the score drop when the patch is hidden
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return maps.detach().float(), (rec.logits if logits is None else logits).float()


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), torch.inference_mode(False):
            yield
    finally:
        model.train(was_training)


def attribute_with_logits(model: Any, images: Any, target: Any = None, method: str = "gradcam", *,
                          data_config: DataConfig | None = None, batch_size: int = 8,
                          **opts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Like ``attribute``, also returning the (N, C) logits of the same pass (Grad-CAM: no extra pass)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if hasattr(model, "data_config") and hasattr(model, "model"):  # a Predictor
        data_config, model = data_config or model.data_config, model.model
    wrapper = model if isinstance(model, AttributionModel) else AttributionModel(model)
    x = _as_pixel_values(images, data_config)
    tgt = _resolve_target(wrapper.model, target, len(x))
    maps, logits = [], []
    with _eval_mode(wrapper.model), wrapper.attached():
        for i in range(0, len(x), batch_size):
            t = None if tgt is None else tgt[i : i + batch_size]
            m, lg = _run_method(wrapper, x[i : i + batch_size], t, method, data_config, opts)
            maps.append(m)
            logits.append(lg)
    return torch.cat(maps).numpy(), torch.cat(logits).numpy()


def attribute(model: Any, images: Any, target: Any = None, method: str = "gradcam", *,
              data_config: DataConfig | None = None, batch_size: int = 8, **opts: Any) -> np.ndarray:
    """Non-negative (N, H, W) float32 attribution maps at the model's input resolution.

    ``model``: a transformers image classifier (or a ``Predictor``). ``images``: preprocessed
    ``pixel_values`` (float B x 3 x H x W), or PIL images / arrays with ``data_config`` (a Predictor
    brings its own). ``target``: None = the predicted class; an index or label, or one per image.
    ``method``: gradcam | guided_gradcam | integrated_gradients (opts: n_steps, baseline=mean|black,
    noise_tunnel, nt_samples, stdevs) | occlusion (opts: window, stride, baseline).
    """
    return attribute_with_logits(model, images, target, method, data_config=data_config, batch_size=batch_size,
                                 **opts)[0]
