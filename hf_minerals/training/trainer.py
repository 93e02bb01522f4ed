"""The Trainer, with the two class-imbalance options and a per-epoch training accuracy.

Everything else (optimiser, schedule, checkpoints, resume, distributed gather) is stock
``transformers.Trainer``: fewer surprises for users who know it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Sampler
from transformers import Trainer

from ..modeling import normal_file_modes


class BalancedSampler(Sampler[int]):
    """Draw indices with probability inversely proportional to their class frequency (with replacement).

    One generator seeded by ``seed + epoch`` (like ``DistributedSampler``): every process draws the
    same order, and a resumed run redraws the same epoch, so resume stays exact.
    """

    def __init__(self, labels: list[int], seed: int = 0) -> None:
        counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long)).float()
        self.weights = (1.0 / counts)[torch.as_tensor(labels, dtype=torch.long)]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=g).tolist()


class WeightedLoss:
    """Class-weighted cross-entropy as a ``compute_loss_func`` (so the Trainer's GA/DDP scaling applies)."""

    def __init__(self, weights: torch.Tensor, label_smoothing: float = 0.0) -> None:
        self.weights, self.label_smoothing = weights, label_smoothing

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        per_sample = F.cross_entropy(
            logits.float(), labels, reduction="none", label_smoothing=self.label_smoothing
        ) * self.weights.to(logits.device)[labels]
        if num_items_in_batch is None:
            return per_sample.mean()
        return per_sample.sum() / torch.as_tensor(num_items_in_batch, device=logits.device)


class MineralTrainer(Trainer):
    """``Trainer`` + optional balanced sampler + ``train_accuracy`` logged next to the training loss."""

    def __init__(
        self,
        *args: Any,
        train_labels: list[int] | None = None,
        balanced: bool = False,
        epoch_aware: list[Any] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._epoch_aware = list(epoch_aware)  # objects with set_epoch (the augmentation transform)
        self._sampler_labels = train_labels if balanced else None
        self._correct = torch.zeros(2, dtype=torch.float64)  # correct, seen since the last log

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        normal_file_modes(output_dir or self.args.output_dir)

    # -- checkpoint loading ---------------------------------------------------------------------------
    # transformers 5 saves some models (Swin...) under their legacy key names and converts them back in
    # ``from_pretrained``; Trainer's resume / load-best use a bare non-strict ``load_state_dict`` that
    # silently skips every renamed weight (a resumed Swin restarted its attention from random init).
    # Load through ``from_pretrained`` instead, strictly.
    def _plain_model(self) -> bool:
        return not (self.is_fsdp_enabled or self.is_deepspeed_enabled or hasattr(self.model, "peft_config"))

    def _load_weights_from(self, folder: str) -> None:
        fresh = type(self.model).from_pretrained(folder, config=self.model.config, use_safetensors=True)
        self.model.load_state_dict(fresh.state_dict(), strict=True)
        del fresh

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        # accelerate forwards set_epoch to the sampler *or* the dataset, not both: tell the transform here.
        epoch = kwargs.get("epoch", args[1] if len(args) > 1 else None)
        for obj in self._epoch_aware:
            obj.set_epoch(epoch)
        return super()._run_epoch(*args, **kwargs)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if model is None and self._plain_model():
            self._load_weights_from(resume_from_checkpoint)
        else:
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if self._plain_model() and self.state.best_model_checkpoint:
            self._load_weights_from(self.state.best_model_checkpoint)
        else:
            super()._load_best_model()

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler | None:
        if self._sampler_labels is not None:
            return BalancedSampler(self._sampler_labels, seed=self.args.data_seed or self.args.seed)
        return super()._get_train_sampler(train_dataset)

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        labels = inputs.get("labels")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training and labels is not None:
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[1]
            with torch.no_grad():
                self._correct += torch.tensor([(logits.argmax(-1) == labels).sum().item(), labels.numel()], dtype=torch.float64)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._correct[1] > 0:
            # Running accuracy on the (augmented) training batches since the last log, summed over processes.
            total = self.accelerator.reduce(self._correct.to(self.args.device, torch.float32), reduction="sum")
            logs["train_accuracy"] = round(float(total[0] / total[1]), 4)
            self._correct.zero_()
        super().log(logs, start_time)
