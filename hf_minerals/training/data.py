"""Training data: load the DatasetDict, check it, and attach the train / eval transforms.

Transforms run on the fly (``with_transform``) so augmentation is fresh every epoch; the Trainer
keeps the ``image`` column because ``remove_unused_columns`` is False.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.loading import is_synthetic, load_dataset_dict
from ..imageio import load_image
from ..preprocessing import AugmentConfig, DataConfig, eval_transform, to_uint8_tensor, train_transform
from .config import DataArguments

logger = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The data set cannot be trained on as given (missing split/column, labels not a ClassLabel...)."""


def training_dataset_dict(name: str, config_name: str | None = None, revision: str | None = None) -> Any:
    """The DatasetDict to train on (through the one loader, ``data.loading``): train/validation/test splits."""
    import datasets

    if not name:
        raise TrainingDataError(
            "no data set given: pass --dataset_name DIR (built with `python scripts/build_dataset.py ...`) or a Hub id"
        )
    ds = load_dataset_dict(name, config_name, revision)
    if not isinstance(ds, datasets.DatasetDict):
        raise TrainingDataError(f"'{name}' holds a single Dataset; training needs a DatasetDict with train/validation/test")
    return ds


def label_names(ds: Any, label_column: str = "label") -> list[str]:
    """Class names from the ``ClassLabel`` feature (the mineral names that end up in ``id2label``)."""
    import datasets

    feature = ds.features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        raise TrainingDataError(
            f"column '{label_column}' must be a ClassLabel (mineral names), got {feature!r}; "
            "build the data set with scripts/build_dataset.py or cast it with `ds.cast_column`"
        )
    return list(feature.names)


INDEX_COLUMN = "sample_index"


class BatchTransform:
    """``with_transform`` callable: a batch of rows -> ``pixel_values`` + ``labels``.

    ``aug`` None = deterministic eval preprocessing. With ``aug``, each image gets its own generator
    seeded by (seed, epoch, sample index): the augmentation of a sample depends on nothing else, so
    a resumed run (whatever the RNG state and the DataLoader's look-ahead), any number of workers and
    any number of processes see exactly the same augmented images. The Trainer sets ``epoch``.
    A class, not a closure, so DataLoader workers can pickle it.
    """

    def __init__(
        self, cfg: DataConfig, aug: AugmentConfig | None, image_column: str, label_column: str, seed: int = 0
    ) -> None:
        self.cfg, self.aug, self.seed, self.epoch = cfg, aug, seed, 0
        self.image_column, self.label_column = image_column, label_column

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch * 100_000_007 + int(index)) % 2**63)

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        images = [to_uint8_tensor(load_image(im)) for im in batch[self.image_column]]
        if self.aug is None:
            pixels = eval_transform(images, self.cfg)
        else:
            indices = batch.get(INDEX_COLUMN) or range(len(images))
            refs = batch.get("photo_reference") or [None] * len(images)  # whole-photo white reference, if built
            pixels = torch.cat(
                [train_transform([im], self.cfg, self.aug, self.generator(i), references=None if r is None else [r])
                 for im, i, r in zip(images, indices, refs)]
            )
        return {"pixel_values": list(pixels), "labels": list(batch[self.label_column])}


def collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.tensor([int(e["labels"]) for e in examples], dtype=torch.long),
    }


def class_weights(counts: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights N / (C * n_c), mean 1 over the training samples (absent classes get 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


@dataclass
class TrainingData:
    """The splits to train on (transforms attached by ``attach_transforms``), class names and counts."""

    train: Any
    eval: Any | None
    test: Any | None
    raw: Any  # the DatasetDict without transforms (for the evaluation report)
    labels: list[str]
    train_label_ids: list[int]
    synthetic: bool
    calibration: Any | None = None  # validation groups held out from checkpoint selection (no transform)

    @property
    def train_counts(self) -> np.ndarray:
        return np.bincount(np.asarray(self.train_label_ids, dtype=np.int64), minlength=len(self.labels))


def _split(ds: Any, split: str | None, what: str, limit: int | None) -> Any | None:
    if split is None:
        return None
    if split not in ds:
        raise TrainingDataError(
            f"the data set has no '{split}' split ({what}); it has {', '.join(ds)}. "
            f"Pass --{what}_split NAME, or --{what}_split '' to skip it."
        )
    out = ds[split]
    if limit is not None:
        out = out.select(range(min(limit, len(out))))
    if len(out) == 0:
        raise TrainingDataError(f"split '{split}' ({what}) is empty")
    return out


def load_training_data(args: DataArguments) -> TrainingData:
    """Load and check the data set named in ``args`` (splits, columns, ClassLabel names)."""
    ds = training_dataset_dict(args.dataset_name, args.dataset_config_name, args.dataset_revision)
    train = _split(ds, args.train_split, "train", args.max_train_samples)
    for col in (args.image_column, args.label_column):
        if col not in train.column_names:
            raise TrainingDataError(f"column '{col}' missing; the data set has {train.column_names}")
    labels = label_names(train, args.label_column)
    evals = _split(ds, args.eval_split, "eval", args.max_eval_samples)
    test = _split(ds, args.test_split, "test", args.max_eval_samples)
    for name, part in (("eval", evals), ("test", test)):
        if part is not None and label_names(part, args.label_column) != labels:
            raise TrainingDataError(f"the {name} split's class names differ from train's: {label_names(part)} vs {labels}")
    ids = [int(v) for v in train[args.label_column]]
    data = TrainingData(train, evals, test, ds, labels, ids, is_synthetic(train))
    missing = [labels[i] for i, c in enumerate(data.train_counts) if c == 0]
    if missing:
        logger.warning("classes with no training images: %s (the model cannot learn them)", missing)
    return data


def hold_out_calibration(data: TrainingData, args: DataArguments, seed: int = 0) -> str:
    """Split validation by group: one part picks the checkpoint, the other fits calibration. Returns what was done."""
    if data.eval is None or not args.calibration_share:
        return "not calibrated (no validation split or calibration_share 0)"
    from ..calibration import split_for_calibration

    try:
        select, calib = split_for_calibration(data.eval, args.calibration_share, seed, args.label_column)
    except ValueError as exc:
        raise TrainingDataError(f"{exc}; pass --calibration_share 0 to train without calibration") from exc
    data.eval, data.calibration = select, calib
    return (f"validation split by group: {len(select)} images choose the checkpoint, {len(calib)} others "
            "(disjoint groups) fit the temperature and the unknown threshold")


def attach_transforms(data: TrainingData, args: DataArguments, cfg: DataConfig, seed: int = 0) -> BatchTransform:
    """Train split: random augmentation (``args``); eval/test: the deterministic ``eval_transform``.

    Returns the training transform (the Trainer tells it the epoch).
    """
    aug = args.augment_config() if args.augment else None
    train_tf = BatchTransform(cfg, aug, args.image_column, args.label_column, seed)
    eval_tf = BatchTransform(cfg, None, args.image_column, args.label_column)
    train = data.train
    if INDEX_COLUMN not in train.column_names:
        train = train.add_column(INDEX_COLUMN, list(range(len(train))))
    data.train = train.with_transform(train_tf)
    data.eval = data.eval.with_transform(eval_tf) if data.eval is not None else None
    data.test = data.test.with_transform(eval_tf) if data.test is not None else None
    return train_tf
