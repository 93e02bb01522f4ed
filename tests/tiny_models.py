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


def kaiming_init_(model: torch.nn.Module) -> torch.nn.Module:
    """He-initialise convolutions and linear layers (zero biases), so the output depends on the input.

    Under transformers' default init (normal, std 0.02) MobileNetV2's signal vanishes within a few
    layers: every image gets the same probabilities and a Predictor-vs-pipeline test cannot fail.
    """
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return model


def make_tiny_model(arch: str, out_dir: str | Path, labels=DEFAULT_LABELS, image_size: int = 64, seed: int = 0,
                    init: str = "default") -> Path:
    """Save a random-init tiny model + processor into ``out_dir`` (a folder pipeline() can load).

    ``init="kaiming"``: He-initialised (input-dependent outputs, see ``kaiming_init_``).
    """
    torch.manual_seed(seed)
    model = AutoModelForImageClassification.from_config(tiny_config(arch, labels, image_size))
    if init == "kaiming":
        kaiming_init_(model)
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    tiny_processor(arch, image_size).save_pretrained(out)
    return out


# -- the paper's three Hub ids, served tiny -------------------------------------------------------------------

#: The three Hub ids of the shipped recipes, by family, and the recipe that names each.
HUB_IDS = {"swin": "microsoft/swin-tiny-patch4-window7-224", "mobilenet_v2": "google/mobilenet_v2_1.0_224",
           "resnet": "microsoft/resnet-50"}
RECIPE_OF = {"swin": "swin_tiny", "mobilenet_v2": "mobilenet_v2", "resnet": "resnet50"}
#: Shrinks of the real configs: same model_type and architecture class, a fraction of the width/depth.
_TINY = {
    "swin": {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]},
    "resnet": {"embedding_size": 8, "hidden_sizes": [8, 8, 16, 16], "depths": [1, 1, 1, 1]},
    "mobilenet_v2": {"depth_multiplier": 0.35},
}


def make_tiny_hub_model(arch: str, out_dir: str | Path, seed: int = 0):
    """A tiny random stand-in of a paper Hub id: the real architecture class and ImageNet-sized head
    (1000 classes), the *real* processor config (bundled copy), a shrunk width/depth. Returns the model."""
    import json
    import shutil

    from hf_minerals.modeling import BUNDLED_DIR

    bundled = BUNDLED_DIR / HUB_IDS[arch].replace("/", "--")
    config = json.loads((bundled / "config.json").read_text())
    id2label = {str(i): f"imagenet class {i}" for i in range(1000)}
    config.update(_TINY[arch], id2label=id2label, label2id={v: int(k) for k, v in id2label.items()})
    config.pop("num_labels", None)
    cfg_cls = type(AutoModelForImageClassification.from_config(tiny_config(arch)).config)
    torch.manual_seed(seed)
    model = AutoModelForImageClassification.from_config(cfg_cls.from_dict(config))
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(bundled / "preprocessor_config.json", out / "preprocessor_config.json")
    return model


def serve_tiny_hub_model(arch: str, work_dir: str | Path, seed: int = 0):
    """Publish ``make_tiny_hub_model(arch)`` on the loopback Hub (already pointed at) under its real id."""
    from huggingface_hub import HfApi

    folder = Path(work_dir) / f"served-{arch}"
    model = make_tiny_hub_model(arch, folder, seed)
    api = HfApi()
    api.create_repo(HUB_IDS[arch], exist_ok=True)
    api.upload_folder(repo_id=HUB_IDS[arch], folder_path=str(folder), commit_message="tiny stand-in for tests")
    return model
