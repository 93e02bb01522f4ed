"""Training throughput: the library's Trainer path vs a bare PyTorch loop, same model, batch and data.

``python scripts/benchmark.py train [--quick] [--model compact:swin] [--batch_size 32] [--steps N]``

Three timings; bare and trainer in interleaved pairs (the machine is shared), the ratio is the median:
- ``bare``: forward / loss / backward / AdamW step over pixel tensors already in memory;
- ``trainer``: ``MineralTrainer`` (what scripts/train.py runs) over the same in-memory tensors -
  the Trainer's own overhead, target <= 15 % (``trainer_overhead``);
- ``trainer_full``: the whole train.py data path (image decode + augmentation on the fly via
  ``with_transform``) for reference.
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class _InMemory(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.x[i], "labels": self.y[i]}


def _bare(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int, lr: float) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=g)
        loss = model(pixel_values=x[idx], labels=y[idx]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch / (time.perf_counter() - t0)


def _trainer(model: torch.nn.Module, dataset: Any, batch: int, steps: int, lr: float, collate: Any = None) -> float:
    from transformers import TrainingArguments

    from ..training.data import collate as default_collate
    from ..training.trainer import MineralTrainer

    with tempfile.TemporaryDirectory(prefix="hfm-bench-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=batch, max_steps=steps, learning_rate=lr,
            lr_scheduler_type="constant", logging_steps=10_000, save_strategy="no", report_to="none",
            disable_tqdm=True, use_cpu=True, dataloader_pin_memory=False, remove_unused_columns=False,
            optim="adamw_torch", seed=0,
        )
        trainer = MineralTrainer(model=model, args=args, train_dataset=dataset, data_collator=collate or default_collate)
        t0 = time.perf_counter()
        trainer.train()
        return steps * batch / (time.perf_counter() - t0)


@dataclass
class Arguments:
    model: str = field(default="compact:swin", metadata={"help": "compact:{swin,resnet,mobilenet_v2} or a local folder"})
    batch_size: int = 32
    steps: int | None = field(default=None, metadata={
        "help": "optimizer steps per timing (default 40 quick, 100 full; fewer measure set-up, not per-step overhead)"})
    repeats: int | None = field(default=None, metadata={"help": "interleaved pairs (default 3 quick, 6 full)"})
    threads: int = field(default=1, metadata={
        "help": "torch threads (default 1: on a shared 2-core machine 2 threads swing 10x with others' load; "
                "0 = torch default)"})


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature
    from PIL import Image

    from ..modeling import build_classifier
    from ..preprocessing import DataConfig, eval_transform
    from ..training.config import DataArguments
    from ..training.data import BatchTransform, collate

    if opts.threads:
        torch.set_num_threads(opts.threads)
    steps = opts.steps or (40 if quick else 100)
    repeats = opts.repeats or (3 if quick else 6)
    batch, lr = opts.batch_size, 1e-3
    torch.set_flush_denormal(True)

    labels = ["arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"]
    torch.manual_seed(0)
    base, processor = build_classifier(opts.model, labels, init="scratch")
    cfg = DataConfig.from_processor(processor)
    rng = np.random.default_rng(0)
    n = 4 * batch
    side = max(cfg.crop) + 16
    images = [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(n)]
    y = torch.as_tensor(rng.integers(0, len(labels), n), dtype=torch.long)
    x = eval_transform(images, cfg)  # data already in memory, model geometry

    ds = Dataset.from_dict(
        {"image": images, "label": y.tolist(), "sample_index": list(range(n))},
        features=Features({"image": ImageFeature(), "label": ClassLabel(names=labels), "sample_index": Value("int64")}),
    )
    full = ds.with_transform(BatchTransform(cfg, DataArguments().augment_config(), "image", "label", seed=0))

    runs: dict[str, list[float]] = {"bare": [], "trainer": [], "trainer_full": []}
    ratios = []
    for r in range(repeats):  # interleaved, order alternating: load changes on the shared machine hit both alike
        order = ("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")
        pair = {}
        for name in order:
            if name == "bare":
                pair[name] = _bare(copy.deepcopy(base), x, y, batch, steps, lr)
            else:
                pair[name] = _trainer(copy.deepcopy(base), _InMemory(x, y), batch, steps, lr)
            runs[name].append(pair[name])
        ratios.append(pair["trainer"] / pair["bare"])
        runs["trainer_full"].append(_trainer(copy.deepcopy(base), full, batch, steps, lr, collate))
    best = {k: max(v) for k, v in runs.items()}
    ratio = float(np.median(ratios))
    return {
        "model": opts.model,
        "parameters": sum(p.numel() for p in base.parameters()),
        "input": list(cfg.crop),
        "batch_size": batch,
        "steps": steps,
        "repeats": repeats,
        "images_per_second_best": {k: round(v, 2) for k, v in best.items()},
        "images_per_second_runs": {k: [round(v, 2) for v in vs] for k, vs in runs.items()},
        "trainer_vs_bare_per_pair": [round(v, 3) for v in ratios],
        "trainer_vs_bare": round(ratio, 3),
        "trainer_overhead": round(1 - ratio, 3),
        "trainer_overhead_target": 0.15,
        "full_pipeline_vs_bare": round(best["trainer_full"] / best["bare"], 3),
        "torch_threads": torch.get_num_threads(),
        "note": "median over interleaved bare/trainer pairs; the full pipeline adds decode + augmentation",
    }
