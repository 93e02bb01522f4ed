"""Mineral-pretrained weights: the offline twin of ImageNet transfer.

``hf-minerals pretrain --output_dir outputs/pretrained/mineral-resnet [--scenes 20000]``

A compact backbone (``compact:resnet`` by default, 128-px input) is trained from random weights to name the
seven synthetic minerals on a large, varied stream of SYNTHETIC scenes: every scene is rendered on the fly
(never all in memory) with the generator's lab-like default imaging, a quarter of them under a random named
shift, all through the one preprocessing path (linear-light augmentation, photo views). The result is a
normal model folder (safetensors + config + image processor + README.md card saying what it was pretrained
on) that ``init: pretrained`` fine-tunes from, as in ``recipes/offline.yaml``; its head is replaced for the
user's classes. ``--scenes 512`` is the quick mode (a smoke test of the command, not useful weights).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..minerals import ALL_SYNTHETIC_MINERALS
from ..preprocessing import AugmentConfig, DataConfig, train_transform

SHIFT_SHARE = 0.25  # share of scenes photographed under a random named shift (variety beyond the default)
#: never used in pretraining: the "target lab" of the few-shot transfer benchmark (real-robustness)
HELD_OUT_SHIFTS = ("camera",)


@dataclass
class PretrainArguments:
    """``hf-minerals pretrain``: mineral-pretrained weights from a stream of SYNTHETIC scenes."""

    output_dir: str = field(default="outputs/pretrained/mineral-resnet", metadata={"help": "model folder to write"})
    model_name_or_path: str = field(default="compact:resnet", metadata={"help": "architecture (compact:<arch> or a config)"})
    scenes: int = field(default=20_000, metadata={"help": "synthetic scenes to stream (512 = quick mode)"})
    image_size: int = field(default=128, metadata={"help": "model input side, px (enough to keep grain texture)"})
    scene_size: int = field(default=160, metadata={"help": "rendered scene side, px (the crop is taken from it)"})
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    photo_view: float = field(default=0.5, metadata={"help": "share of samples shown photo-normalised"})
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(ALL_SYNTHETIC_MINERALS), metadata={
        "help": "synthetic minerals to name (e.g. leave some out to keep them unseen for an open-set benchmark)",
        "choices": list(ALL_SYNTHETIC_MINERALS)})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    log_every: int = 25


def scene_stream(seed: int, size: int, classes: tuple[str, ...] = ALL_SYNTHETIC_MINERALS) -> Iterator[tuple[np.ndarray, int]]:
    """Endless (image, label) stream of synthetic scenes, one seeded draw per scene (never held in memory)."""
    from ..synthetic import SHIFTS, render_scene

    rng = np.random.default_rng([seed, 7_777])
    shifts = sorted(set(SHIFTS) - set(HELD_OUT_SHIFTS))
    i = 0
    while True:
        label = int(rng.integers(len(classes)))
        shift = str(rng.choice(shifts)) if rng.random() < SHIFT_SHARE else None
        yield render_scene(classes[label], size, seed=8_000_000 + seed * 1_000_000 + i, shift=shift).image, label
        i += 1


def pretrain(args: PretrainArguments, progress: bool = True) -> dict:
    """Stream ``args.scenes`` scenes through the model once; save the folder; return the run's facts."""
    from ..modeling import build_classifier
    from ..predict import PHOTO_VIEWS_ATTR

    if args.scenes < args.batch_size:
        raise ValueError(f"--scenes ({args.scenes}) must be at least --batch_size ({args.batch_size})")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    classes = tuple(dict.fromkeys(args.classes))
    if len(classes) < 2:
        raise ValueError(f"--classes needs at least two minerals, got {list(classes)}")
    model, processor = build_classifier(args.model_name_or_path, list(classes), init="scratch")
    if hasattr(processor, "size"):
        processor.size = {"shortest_edge": args.image_size} if "shortest_edge" in (processor.size or {}) else \
            {"height": args.image_size, "width": args.image_size}
    if getattr(model.config, "image_size", None):
        model.config.image_size = args.image_size
    cfg = DataConfig.from_processor(processor)
    aug = AugmentConfig(photo_view=args.photo_view)
    steps = args.scenes // args.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.learning_rate, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(args.seed)
    stream = scene_stream(args.seed, args.scene_size, classes)
    model.train()
    t0, seen, correct, loss_sum, log = time.perf_counter(), 0, 0, 0.0, []
    for step in range(1, steps + 1):
        batch = [next(stream) for _ in range(args.batch_size)]
        x = train_transform([b[0] for b in batch], cfg, aug, g)
        y = torch.tensor([b[1] for b in batch])
        out = model(pixel_values=x, labels=y)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        sched.step()
        seen += len(batch)
        correct += int((out.logits.argmax(1) == y).sum())
        loss_sum += float(out.loss.detach()) * len(batch)
        if step % args.log_every == 0 or step == steps:
            rate = seen / (time.perf_counter() - t0)
            log.append({"step": step, "scenes": seen, "train_loss": round(loss_sum / seen, 4),
                        "train_accuracy": round(correct / seen, 4), "scenes_per_s": round(rate, 1)})
            if progress:
                print(f"step {step}/{steps}: {seen} scenes, loss {loss_sum / seen:.3f}, running accuracy "
                      f"{correct / seen:.3f}, {rate:.1f} scenes/s", file=sys.stderr)
    seconds = time.perf_counter() - t0
    setattr(model.config, PHOTO_VIEWS_ATTR, args.photo_view > 0)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    facts = {"synthetic": True, "scenes": seen, "classes": list(classes), "seconds": round(seconds, 1),
             "scenes_per_s": round(seen / seconds, 1), "steps": steps, "image_size": args.image_size,
             "architecture": args.model_name_or_path, "parameters": sum(p.numel() for p in model.parameters()),
             "shift_share": SHIFT_SHARE, "held_out_shifts": list(HELD_OUT_SHIFTS), "photo_view": args.photo_view, "seed": args.seed,
             "final_running_accuracy": log[-1]["train_accuracy"] if log else None, "log": log,
             "quick_mode": args.scenes < 5_000}
    (out_dir / "pretrain_results.json").write_text(json.dumps(facts, indent=1))
    (out_dir / "README.md").write_text(card(facts, args))
    return facts


def card(facts: dict, args: PretrainArguments) -> str:
    """The folder's model card: what it was pretrained on, how to rebuild it, what it is for."""
    quick = "\n> **Quick mode** (fewer than 5,000 scenes): a smoke test of the command, not useful weights.\n" \
        if facts["quick_mode"] else ""
    return f"""---
library_name: transformers
pipeline_tag: image-classification
tags: [hf-minerals, synthetic-data, reflected-light, ore-microscopy, pretraining]
---
# Mineral-pretrained {facts['architecture']} ({facts['parameters']:,} parameters, {facts['image_size']}-px input)

> **Pretrained on SYNTHETIC scenes only** (`hf_minerals.synthetic`, generator v2), not on real photomicrographs.
> It is an initialisation for fine-tuning on your own photos (`recipes/offline.yaml`, `init: pretrained`),
> the offline stand-in for ImageNet weights; do not use its {len(facts['classes'])}-class head to classify real samples.
{quick}
- **Data**: {facts['scenes']:,} scenes rendered on the fly ({args.scene_size} px, random crops to
  {facts['image_size']} px), the {len(facts['classes'])} synthetic minerals ({', '.join(facts['classes'])}) drawn uniformly; default
  lab-like imaging (lamps 2900-6500 K, white-balance error, exposure +-1 EV, camera colour matrix, JPEG q70-95),
  {int(100 * facts['shift_share'])} % of scenes under a random named shift (never `camera`: held out as the target
  lab of the few-shot transfer benchmark); linear-light augmentation and photo
  views (`photo_view: {facts['photo_view']}`); one pass over the stream, nothing held in memory.
- **Training**: AdamW (lr {args.learning_rate}, weight decay {args.weight_decay}), one-cycle schedule,
  batch {args.batch_size}, {facts['steps']} steps, seed {facts['seed']}; {facts['seconds']:.0f} s on this machine
  ({facts['scenes_per_s']} scenes/s); running training accuracy at the end {facts['final_running_accuracy']}.
- **Rebuild**: `hf-minerals pretrain --output_dir {args.output_dir} --model_name_or_path {args.model_name_or_path}
  --scenes {facts['scenes']} --image_size {facts['image_size']} --seed {facts['seed']}`
  (arguments in `args.yaml`, facts in `pretrain_results.json`).
"""


def main(argv: list[str] | None = None) -> dict:
    from ..cli_args import parse_command_line, save_args

    (args,) = parse_command_line([PretrainArguments], argv, prog="hf-minerals pretrain")
    try:
        facts = pretrain(args)
    except ValueError as exc:
        sys.exit(f"hf-minerals pretrain: error: {exc}")
    save_args(Path(args.output_dir) / "args.yaml", args, command="hf-minerals pretrain")
    print(f"pretrained on {facts['scenes']} SYNTHETIC scenes in {facts['seconds']:.0f} s ({facts['scenes_per_s']} "
          f"scenes/s) -> {args.output_dir}/ (fine-tune with recipes/offline.yaml)")
    return facts
