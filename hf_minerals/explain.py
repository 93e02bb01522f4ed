"""Attribution maps for image classifiers, through Captum: why did the model call this grain pyrite?

Cai et al. (2024) read class activation maps to argue that Swin looks at colour and grain edges.
This module gives every architecture the same tools - Grad-CAM, Guided Grad-CAM, Integrated
Gradients (optionally smoothed with a NoiseTunnel) and occlusion - as non-negative per-pixel maps at
the model's input resolution, plus ``overlay`` rendering and the ``Explainer`` the Space calls
(probabilities and a Grad-CAM map from ONE forward/backward pass).

Grad-CAM needs a spatial layer. It is found from the model type: ResNet's last stage,
MobileNetV2's last 1x1 conv, and for Swin the last stage: the token sequence (B, L, C) entering its
last block (the output of that block's first LayerNorm, as pytorch-grad-cam does) viewed as a
(B, C, h, w) map, where (h, w) is read from the last stage's own input grid, so any input size works
(input/32: 7x7 at 224 px, 8x8 at 256 px). ViT-like models (CLS/register tokens first) and other
CNNs are handled too. The view is an identity: logits are bit-for-bit unchanged (tested).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .preprocessing import DataConfig, eval_transform, resize_crop, to_uint8_tensor

METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion")


class _TokenGrid(nn.Module):
    """Identity on a (B, C, h, w) view of a token sequence: the layer Captum hooks for transformers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class AttributionModel(nn.Module):
    """``model(pixel_values=x).logits`` as a tensor function (what Captum needs) + its Grad-CAM layer.

    Hooks that expose a token sequence as a grid are attached only inside ``with self.attached():``,
    so the wrapped model is left exactly as it was.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.grid = _TokenGrid()
        self._grid_hw: tuple[int, int] | None = None
        self._input_hw: tuple[int, int] | None = None
        self.layer, self.layer_name, self._token_kind = _find_target_layer(model, self.grid)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self._input_hw = tuple(pixel_values.shape[-2:])
        return self.model(pixel_values=pixel_values).logits

    # -- token sequence -> (B, C, h, w) --------------------------------------------------------
    def _to_grid(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = tokens.shape
        if h * w != n:
            raise RuntimeError(f"{self.layer_name}: {n} tokens do not form a {h}x{w} grid")
        grid = self.grid(tokens.transpose(1, 2).reshape(b, c, h, w))
        return grid.reshape(b, c, n).transpose(1, 2).contiguous()

    def _swin_stage_hook(self, _module: nn.Module, args: tuple, kwargs: dict) -> None:
        dims = args[1] if len(args) > 1 else kwargs["input_dimensions"]
        self._grid_hw = (int(dims[0]), int(dims[1]))

    def _swin_tokens_hook(self, _module: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        if self._grid_hw is None:
            raise RuntimeError("Swin grid size unknown: the last stage's hook did not run")
        return self._to_grid(out, *self._grid_hw)

    def _vit_tokens_hook(self, _module: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        patch = self.model.config.patch_size
        patch = patch[0] if isinstance(patch, (tuple, list)) else patch
        h, w = (s // patch for s in self._input_hw)
        prefix = out.shape[1] - h * w  # CLS / distillation / register tokens come first
        if prefix < 0:
            raise RuntimeError(f"{self.layer_name}: {out.shape[1]} tokens, fewer than the {h}x{w} patches")
        return torch.cat([out[:, :prefix], self._to_grid(out[:, prefix:], h, w)], dim=1)

    @contextlib.contextmanager
    def attached(self) -> Iterator[AttributionModel]:
        """Attach the token-grid hooks (no-op for CNNs) for the duration of an attribution."""
        handles = []
        base = getattr(self.model, self.model.base_model_prefix, self.model)
        if self._token_kind == "swin":
            handles.append(base.encoder.layers[-1].register_forward_pre_hook(self._swin_stage_hook, with_kwargs=True))
            block = base.encoder.layers[-1].blocks[-1]  # its first LayerNorm: tokens before the last mixing
            handles.append(block.layernorm_before.register_forward_hook(self._swin_tokens_hook))
        elif self._token_kind == "vit":
            handles.append(_vit_blocks(base)[-1].layernorm_before.register_forward_hook(self._vit_tokens_hook))
        try:
            yield self
        finally:
            for h in handles:
                h.remove()


def _find_target_layer(model: nn.Module, grid: _TokenGrid) -> tuple[nn.Module, str, str | None]:
    """(module Captum hooks, its name, token kind) for Grad-CAM, from the model type."""
    kind = getattr(model.config, "model_type", "")
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if kind == "resnet":
        return base.encoder.stages[-1], "resnet.encoder.stages[-1]", None
    if kind == "mobilenet_v2":
        return base.conv_1x1, "mobilenet_v2.conv_1x1", None
    enc = getattr(base, "encoder", None)
    if hasattr(enc, "layers") and hasattr(enc.layers[-1], "blocks") and hasattr(enc.layers[-1].blocks[-1], "layernorm_before"):
        return grid, f"{kind}.encoder.layers[-1].blocks[-1].layernorm_before (tokens as a grid)", "swin"
    if _vit_blocks(base) is not None:
        return grid, f"{kind} last encoder layer's layernorm_before (patch tokens as a grid)", "vit"
    return _last_feature_map(model, kind)


def _vit_blocks(base: nn.Module | None) -> nn.ModuleList | None:
    """The encoder layers of a ViT-like model (``encoder.layer`` or, in newer transformers, ``layers``)."""
    for blocks in (getattr(getattr(base, "encoder", None), "layer", None), getattr(base, "layers", None)):
        if isinstance(blocks, nn.ModuleList) and len(blocks) and hasattr(blocks[-1], "layernorm_before"):
            return blocks
    return None


def _last_feature_map(model: nn.Module, kind: str) -> tuple[nn.Module, str, None]:
    """Other CNNs: the last module (in call order) that outputs a spatial (B, C, h, w) map."""
    size = getattr(model.config, "image_size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    seen: list[tuple[str, nn.Module]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4 and min(out.shape[-2:]) > 1 and not any(
            w in names[mod] for w in ("pool", "embedding")):
            seen.append((names[mod], mod))

    handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model(pixel_values=torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ValueError(f"cannot find a spatial layer for Grad-CAM in a '{kind}' model; use integrated_gradients or occlusion")
    return seen[-1][1], seen[-1][0], None


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


# -- rendering --------------------------------------------------------------------------------
def normalize_map(m: np.ndarray, clip_percentile: float = 99.5) -> np.ndarray:
    """Scale a non-negative map to [0, 1]; clipping the top 0.5 % keeps one hot pixel from hiding the rest."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    top = float(np.percentile(m, clip_percentile)) if m.size else 0.0
    top = top if top > 0 else float(m.max(initial=0.0))
    return np.clip(m / top, 0, 1) if top > 0 else np.zeros_like(m)


def model_view(image: Any, data_config: DataConfig) -> np.ndarray:
    """The image as the model sees it (resized / centre-cropped by the one preprocessing factory), HxWx3 uint8."""
    t = resize_crop(to_uint8_tensor(image).unsqueeze(0).float(), data_config)[0]
    return t.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def overlay(image: Any, attribution: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> Image.Image:
    """Blend a colour-mapped attribution map over an image (the map is resized to the image)."""
    from matplotlib import colormaps

    base = Image.fromarray(np.asarray(image, dtype=np.uint8)) if not isinstance(image, Image.Image) else image
    base = base.convert("RGB")
    m = normalize_map(attribution)
    if m.shape != (base.height, base.width):
        m = np.asarray(Image.fromarray(m, mode="F").resize(base.size, Image.BILINEAR)).clip(0, 1)
    heat = colormaps[cmap](m)[..., :3] * 255.0
    out = (1 - alpha) * np.asarray(base, dtype=np.float32) + alpha * heat
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


# -- faithfulness -----------------------------------------------------------------------------
def energy_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's (non-negative) attribution energy inside its boolean mask, (N,)."""
    maps = np.clip(maps, 0, None).reshape(len(maps), -1)
    masks = masks.reshape(len(masks), -1).astype(bool)
    total = maps.sum(1)
    return np.where(total > 0, (maps * masks).sum(1) / np.maximum(total, 1e-12), np.nan)


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1.0 where the map's maximum falls inside the mask, else 0.0, (N,)."""
    flat = maps.reshape(len(maps), -1)
    hit = masks.reshape(len(masks), -1).astype(bool)[np.arange(len(flat)), flat.argmax(1)]
    return hit.astype(np.float64)


@torch.no_grad()
def deletion_curve(model: Any, pixel_values: torch.Tensor, maps: np.ndarray, target: Sequence[int],
                   steps: int = 16, seed: int = 0) -> np.ndarray:
    """(N, steps+1) probability of ``target`` as the most-attributed pixels are set to the mean colour.

    Ties (Grad-CAM's flat zeros) are broken at random. A faithful map makes the curve fall fast (low area).
    """
    wrapper = model if isinstance(model, AttributionModel) else AttributionModel(model)
    gen = np.random.default_rng(seed)
    n, _, h, w = pixel_values.shape
    out = np.zeros((n, steps + 1))
    with _eval_mode(wrapper.model), torch.no_grad():
        for i in range(n):
            order = np.lexsort((gen.random(h * w), -maps[i].reshape(-1)))  # by map desc, random ties
            ranks = np.empty(h * w, np.int64)
            ranks[order] = np.arange(h * w)
            cut = torch.from_numpy(ranks.reshape(h, w))
            keep = torch.stack([cut >= math.ceil(k * h * w / steps) for k in range(steps + 1)]).unsqueeze(1)
            batch = pixel_values[i : i + 1] * keep  # removed pixels -> 0 = the mean colour
            out[i] = torch.softmax(wrapper(batch).float(), -1)[:, int(target[i])].numpy()
    return out


def curve_area(curve: np.ndarray) -> np.ndarray:
    """Normalised area under curves sampled at equal fractions of pixels removed (trapezoid rule)."""
    c = np.asarray(curve, dtype=np.float64)
    return (c[:, :-1] + c[:, 1:]).sum(1) / (2 * (c.shape[1] - 1))


# -- one pass for the Space -------------------------------------------------------------------
@dataclass
class Explanation:
    """What the Space shows: calibrated probabilities, decisions, Grad-CAM maps and the model's view."""

    probs: np.ndarray  # (N, C)
    predictions: list  # predict.Prediction per image
    maps: np.ndarray  # (N, H, W) >= 0, at the model's input size
    views: list[np.ndarray]  # HxWx3 uint8, the images as the model saw them

    def overlays(self, alpha: float = 0.5, cmap: str = "jet") -> list[Image.Image]:
        return [overlay(v, m, alpha=alpha, cmap=cmap) for v, m in zip(self.views, self.maps)]


class Explainer:
    """Prediction + Grad-CAM from one forward/backward pass, reusing a ``Predictor``'s model,
    preprocessing, temperature and unknown threshold (cheaper than pipeline() + a separate Captum pass)."""

    def __init__(self, predictor: Any, method: str = "gradcam") -> None:
        self.predictor = predictor
        self.method = method
        self.wrapper = AttributionModel(predictor.model)

    def explain(self, images: Sequence[Any], target: Any = None, top_k: int = 3, **opts: Any) -> Explanation:
        """Explain the predicted class (or ``target``) for PIL images / arrays / paths."""
        from .imageio import load_image

        imgs = [im if isinstance(im, (Image.Image, np.ndarray, torch.Tensor)) else load_image(im) for im in images]
        cfg = self.predictor.data_config
        maps, logits = attribute_with_logits(self.wrapper, self.predictor.preprocess(imgs), target, self.method,
                                             data_config=cfg, batch_size=self.predictor.batch_size, **opts)
        probs = torch.softmax(torch.from_numpy(logits) / self.predictor.temperature, dim=-1).numpy()
        return Explanation(probs, self.predictor.decide(probs, top_k=top_k), maps, [model_view(im, cfg) for im in imgs])
