"""Where Grad-CAM looks: the spatial layer of each architecture, found from the model type.

ResNet's last stage, MobileNetV2's last 1x1 conv, and for Swin the last stage: the token sequence
(B, L, C) entering its last block (the output of that block's first LayerNorm, as pytorch-grad-cam
does) viewed as a (B, C, h, w) map, where (h, w) is read from the last stage's own input grid, so any
input size works (input/32: 7x7 at 224 px, 8x8 at 256 px). ViT-like models (CLS/register tokens
first) and other CNNs are handled too. The view is an identity: logits are bit-for-bit unchanged (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


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
