"""Training arguments: what ``train`` adds to the shared argument system (``hf_minerals.cli_args``).

``ModelArguments`` and ``DataArguments`` next to transformers' ``TrainingArguments`` (with image
classification defaults); ``--config recipes/X.yaml`` sets defaults, flags override them, unknown keys
are rejected with a hint. ``<output_dir>/args.yaml`` keeps only what differs from the defaults of
``TrainingArguments`` so it stays readable and loads across transformers versions.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import TrainingArguments

from .. import cli_args
from ..cli_args import ConfigError, plain
from ..preprocessing import AugmentConfig

__all__ = ["ConfigError", "DataArguments", "ModelArguments", "load_recipe", "parse_args", "save_args"]


@dataclass
class ModelArguments:
    """Which network, and how its weights start."""

    model_name_or_path: str = field(
        default="compact:swin",
        metadata={"help": "Hub id (microsoft/swin-tiny-patch4-window7-224), local folder, or compact:{swin,mobilenet_v2,resnet}"},
    )
    init: Literal["pretrained", "scratch"] = field(
        default="pretrained",
        metadata={"help": "pretrained: ImageNet weights, new head; scratch: same architecture, random weights"},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "YAML/JSON mapping applied to the model config, e.g. '{drop_path_rate: 0.2}'"},
    )
    model_revision: str | None = field(default=None, metadata={"help": "Hub branch, tag or commit of the model"})
    bn_momentum: float = field(
        default=0.1,
        metadata={"help": "PyTorch BatchNorm momentum replacing TF-style decays (MobileNetV2's 0.997), see docs"},
    )

    def __post_init__(self) -> None:
        if self.init not in ("pretrained", "scratch"):
            raise ConfigError(f"init must be 'pretrained' or 'scratch', got {self.init!r}")
        if isinstance(self.config_overrides, dict):  # a YAML mapping in the recipe
            self.config_overrides = json.dumps(self.config_overrides)
        if not 0.0 < self.bn_momentum <= 1.0:
            raise ConfigError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")


@dataclass
class DataArguments:
    """Where the images come from, and how they are augmented and balanced."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "folder written by DatasetDict.save_to_disk (scripts/build_dataset.py) or Hub id"}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub data set configuration"})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub data set revision"})
    train_split: str = "train"
    eval_split: str | None = field(default="validation", metadata={"help": "per-epoch evaluation split ('' = none)"})
    test_split: str | None = field(default="test", metadata={"help": "final evaluation split ('' = none)"})
    image_column: str = "image"
    label_column: str = "label"
    max_train_samples: int | None = field(default=None, metadata={"help": "truncate train (debugging)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "truncate validation/test (debugging)"})
    augment: bool = field(default=True, metadata={"help": "random training augmentation (eval is always deterministic)"})
    crop_scale_min: float = field(default=0.35, metadata={"help": "smallest area fraction of the random resized crop"})
    rotation_degrees: float = field(default=15.0, metadata={"help": "small random rotation, +-degrees (plus 90-degree turns)"})
    color_jitter: float = field(
        default=0.1, metadata={"help": "picture-style chroma jitter s (linear light; exposure and white balance are "
                                       "always jittered, see AugmentConfig)"}
    )
    photo_view: float = field(
        default=0.0, metadata={"help": "share of samples shown photo-normalised (0.5: the model also learns photo-"
                                       "relative colour; Predictor then averages both views)"}
    )
    random_erasing: float = field(default=0.25, metadata={"help": "probability of one random-erasing rectangle"})
    class_balance: Literal["none", "weighted_loss", "sampler"] = field(
        default="none", metadata={"help": "imbalance: inverse-frequency loss weights, or a balanced sampler"}
    )
    report_dir: str | None = field(
        default=None, metadata={"help": "where the test-split report (confusion matrix, ECE...) goes; default output_dir"}
    )
    calibration_share: float = field(
        default=0.5,
        metadata={"help": "share of the validation groups held out from checkpoint selection to fit the temperature "
                  "and unknown threshold before the test report (0 = no calibration)"},
    )
    ood_method: str = field(
        default="colour",
        metadata={"help": "open-set score fitted with the calibration (hf_minerals.openset: colour, knn, mahalanobis, "
                  "their +-sums, or exposure = outlier exposure on synthetic negatives)"},
    )

    def __post_init__(self) -> None:
        if self.class_balance not in ("none", "weighted_loss", "sampler"):
            raise ConfigError(f"class_balance must be none, weighted_loss or sampler, got {self.class_balance!r}")
        if not 0.0 < self.crop_scale_min <= 1.0:
            raise ConfigError(f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ConfigError(f"color_jitter must be in [0, 1), got {self.color_jitter}")
        if not 0.0 <= self.photo_view <= 1.0:
            raise ConfigError(f"photo_view must be in [0, 1], got {self.photo_view}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ConfigError(f"random_erasing must be in [0, 1], got {self.random_erasing}")
        if not 0.0 <= self.calibration_share < 1.0:
            raise ConfigError(f"calibration_share must be in [0, 1), got {self.calibration_share}")
        from ..openset import METHODS

        if self.ood_method not in METHODS:
            raise ConfigError(f"ood_method must be one of {', '.join(METHODS)}, got {self.ood_method!r}")
        self.eval_split = self.eval_split or None
        self.test_split = self.test_split or None

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(
            scale=(self.crop_scale_min, 1.0),
            rotation=self.rotation_degrees,
            color_jitter=self.color_jitter,
            erasing=self.random_erasing,
            photo_view=self.photo_view,
        )


ARG_CLASSES = (ModelArguments, DataArguments, TrainingArguments)
# Defaults that differ from TrainingArguments' own, for image classification with on-the-fly transforms.
TRAINING_DEFAULTS: dict[str, Any] = {"remove_unused_columns": False, "output_dir": "outputs/train"}
PROG = "hf-minerals train"


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def known_fields() -> set[str]:
    return set(cli_args.field_names(ARG_CLASSES))


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe: a flat mapping of argument names to values, unknown names rejected."""
    return cli_args.load_config(path, known_fields(), PROG)


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse ``[--config recipe.yaml] [--field value ...]`` into the three argument dataclasses."""
    defaults = dict(TRAINING_DEFAULTS)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_accelerator():
        # `accelerate launch --multi_gpu` on a CPU-only machine: without use_cpu every process would
        # quietly train alone; with it they form one gloo group (MULTI_CPU).
        defaults["use_cpu"] = True
    model_args, data_args, training_args = cli_args.parse(ARG_CLASSES, list(argv or []), prog=PROG, defaults=defaults)
    if not training_args.output_dir:
        raise ConfigError("output_dir is required (in the recipe or as --output_dir)")
    training_args.remove_unused_columns = False  # the image column must reach our transform
    return model_args, data_args, training_args


def resolved_args(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """All arguments as one flat mapping (tokens left out), loadable again with ``--config``."""
    out = cli_args.as_config(model_args, data_args)
    # Never build a second TrainingArguments here: setting up its device resets the distributed state.
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name.endswith("_token") or f.name == "local_rank":
            continue
        # Only what differs from the field defaults: keeps args.yaml readable and loadable across versions.
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = getattr(training_args, f.name)
        if f.name == "output_dir" or plain(value) != plain(default):
            out[f.name] = plain(value)
    return out


def save_args(path: str | Path, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> Path:
    """Write ``args.yaml`` (the resolved arguments) so a run can be repeated with ``--config``."""
    return cli_args.save_args(path, resolved_args(model_args, data_args, training_args), command=PROG)
