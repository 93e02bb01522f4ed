"""Tiny image classifiers of the three paper families, built from configs (no Hub), for fast tests."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForImageClassification,
    ConvNextImageProcessor,
    MobileNetV2Config,
    MobileNetV2ImageProcessor,
    ResNetConfig,
    SwinConfig,
    ViTImageProcessor,
)

DEFAULT_LABELS = ("arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite")


def tiny_config(arch: str, labels=DEFAULT_LABELS, image_size: int = 64):
    id2label = {i: n for i, n in enumerate(labels)}
    label2id = {n: i for i, n in id2label.items()}
    common = dict(num_labels=len(labels), id2label=id2label, label2id=label2id)
    if arch == "swin":
        return SwinConfig(
            image_size=image_size, patch_size=4, embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4],
            window_size=2, **common,
        )
    if arch == "resnet":
        return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic", **common)
    if arch == "mobilenet_v2":
        return MobileNetV2Config(image_size=image_size, depth_multiplier=0.35, **common)
    raise ValueError(arch)


def tiny_processor(arch: str, image_size: int = 64):
    if arch == "swin":
        return ViTImageProcessor(size={"height": image_size, "width": image_size})
    if arch == "resnet":
        return ConvNextImageProcessor(size={"shortest_edge": image_size}, crop_pct=0.875)
    if arch == "mobilenet_v2":
        return MobileNetV2ImageProcessor(size={"shortest_edge": image_size + 8}, crop_size={"height": image_size, "width": image_size})
    raise ValueError(arch)


def make_tiny_model(arch: str, out_dir: str | Path, labels=DEFAULT_LABELS, image_size: int = 64, seed: int = 0) -> Path:
    """Save a random-init tiny model + processor into ``out_dir`` (a folder pipeline() can load)."""
    torch.manual_seed(seed)
    model = AutoModelForImageClassification.from_config(tiny_config(arch, labels, image_size))
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    tiny_processor(arch, image_size).save_pretrained(out)
    return out
