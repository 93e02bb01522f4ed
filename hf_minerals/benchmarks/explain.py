"""Faithfulness and cost of attribution maps, on SYNTHETIC scenes whose ground-truth masks say where
the mineral is: ``python scripts/benchmark.py explain [--quick] [--model DIR [DIR ...]] [--train_tiny]``.

Per trained model x method, against a random map in the same run: the share of attribution energy
inside the target mineral's mask, the pointing game (map maximum inside the mask) and the deletion
curve area (probability of the true class as the most-attributed pixels are set to the mean colour;
lower = more faithful). Also seconds per image per method, Grad-CAM on a full-size swin-tiny at 224 px
(random init: no Hub here, timing only), and the Space's one-pass ``Explainer`` against
``predict_proba`` + a separate Grad-CAM call.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..explain import METHODS, Explainer, attribute, curve_area, deletion_curve, energy_in_mask, pointing_game
from ..minerals import CODE_OF, PAPER_MINERALS
from ..modeling import label_config
from ..predict import Predictor
from ..preprocessing import DataConfig, eval_transform, resize_crop
from ..runtime import timeit

QUICKSTART = Path("outputs/quickstart/model")
#: swin-tiny (microsoft/swin-tiny-patch4-window7-224) hyper-parameters, for a random-init timing model.
SWIN_TINY = dict(image_size=224, patch_size=4, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                 window_size=7, mlp_ratio=4.0)


def _scenes(labels: list[str], per_class: int, size: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Synthetic scenes of the model's minerals: images, boolean masks of the labelled mineral, class ids."""
    from ..synthetic import render_scene

    images, masks, ids = [], [], []
    for i in range(per_class):
        for k, mineral in enumerate(labels):
            scene = render_scene(mineral, size=size, seed=seed + 1000 * k + i)
            images.append(scene.image)
            masks.append(scene.mask == CODE_OF[mineral])
            ids.append(k)
    return images, masks, ids


def _masks_to_model(masks: list[np.ndarray], cfg: DataConfig) -> np.ndarray:
    """Masks through the same resize / centre crop as the pixels (one preprocessing factory)."""
    t = torch.from_numpy(np.stack(masks).astype(np.float32)).unsqueeze(1)
    return (resize_crop(t, cfg)[:, 0] > 0.5).numpy()


def _train_tiny(labels: list[str], arch: str, steps: int, seed: int) -> tuple[torch.nn.Module, DataConfig, dict]:
    """A compact model trained from scratch here on synthetic scenes (used when no quickstart model exists)."""
    from ..modeling import build_classifier

    torch.manual_seed(seed)
    model, processor = build_classifier(f"compact:{arch}", list(labels), init="scratch")
    cfg = DataConfig.from_processor(processor)
    images, _, ids = _scenes(labels, 24, 128, seed=10_000 + seed)
    x, y = eval_transform(images, cfg), torch.tensor(ids)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    model.train()
    t0 = time.perf_counter()
    for step in tqdm(range(steps), desc=f"train compact-{arch}", unit="step"):
        idx = torch.randint(0, len(x), (32,), generator=torch.Generator().manual_seed(step))
        loss = torch.nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, cfg, {"source": f"compact-{arch} trained from scratch in this benchmark on synthetic scenes",
                        "train_steps": steps, "train_images": len(x), "train_seconds": round(time.perf_counter() - t0, 1)}


def _faithfulness(name: str, model: torch.nn.Module, cfg: DataConfig, methods: list[str], per_class: int,
                  scene_size: int, opts: dict[str, Any]) -> dict[str, Any]:
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    unknown = [m for m in labels if m not in CODE_OF]
    if unknown:
        raise ValueError(f"{name}: no synthetic masks for {unknown}")
    images, masks, ids = _scenes(labels, per_class, scene_size, seed=0)
    x = eval_transform(images, cfg)
    masks_m = _masks_to_model(masks, cfg)
    with torch.no_grad():
        acc = float((model(pixel_values=x).logits.argmax(1).numpy() == np.array(ids)).mean())
    rng = np.random.default_rng(0)
    random_maps = rng.random(masks_m.shape).astype(np.float32)
    random_del = curve_area(deletion_curve(model, x, random_maps, ids, steps=opts["deletion_steps"]))
    out: dict[str, Any] = {
        "n_scenes": len(x), "accuracy_on_these_scenes": round(acc, 3), "input_size": list(x.shape[-2:]),
        "target": "the scene's true mineral", "mask_area_fraction": round(float(masks_m.mean()), 4),
        "random_map": {"energy_in_mask": round(float(energy_in_mask(random_maps, masks_m).mean()), 4),
                       "pointing_game": round(float(pointing_game(random_maps, masks_m).mean()), 4),
                       "deletion_auc": round(float(random_del.mean()), 4)},
        "methods": {},
    }
    for method in tqdm(methods, desc=f"faithfulness {name}", unit="method"):
        extra = {} if opts["occlusion_overlap"] or method != "occlusion" else {"stride": max(4, min(x.shape[-2:]) // 8)}
        attribute(model, x[:1], target=ids[:1], method=method, n_steps=opts["n_steps"], **extra)  # warm-up
        t0 = time.perf_counter()
        maps = attribute(model, x, target=ids, method=method, n_steps=opts["n_steps"], **extra)
        secs = (time.perf_counter() - t0) / len(x)
        dele = curve_area(deletion_curve(model, x, maps, ids, steps=opts["deletion_steps"]))
        e = float(np.nanmean(energy_in_mask(maps, masks_m)))
        out["methods"][method] = {
            "energy_in_mask": round(e, 4), "pointing_game": round(float(pointing_game(maps, masks_m).mean()), 4),
            "deletion_auc": round(float(dele.mean()), 4), "seconds_per_image": round(secs, 4),
            "beats_random_energy": bool(e > out["random_map"]["energy_in_mask"]),
            "beats_random_deletion": bool(dele.mean() < random_del.mean()),
        }
    return out


def _wall_and_cpu(fn: Any, repeats: int) -> tuple[float, float]:
    """(best wall seconds, median process-CPU seconds) per call. CPU time barely moves when other
    people's jobs share the cores, so it is the steadier figure on a busy machine."""
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), statistics.median(cpus)


def _swin_tiny_speed(quick: bool, methods: list[str]) -> dict[str, Any]:
    """Grad-CAM (and the other methods) on the full-size swin-tiny architecture at 224 px."""
    from transformers import AutoModelForImageClassification, SwinConfig

    from ..synthetic import render_scene

    torch.manual_seed(0)
    cfg = SwinConfig(**SWIN_TINY, **label_config(PAPER_MINERALS))
    model = AutoModelForImageClassification.from_config(cfg).eval()
    dcfg = DataConfig(crop=(224, 224))
    image = render_scene("pyrite", size=448, seed=7).image  # resized to 224 by the one preprocessing factory
    x = eval_transform([image], dcfg)

    def forward() -> None:
        with torch.inference_mode():
            model(pixel_values=x)

    res: dict[str, Any] = {
        "model": "swin-tiny architecture (SwinConfig with swin-tiny hyper-parameters), RANDOM init: timing only",
        "input": "224x224, batch 1", "torch_threads": torch.get_num_threads(),
        "load_average_1min_before": round(os.getloadavg()[0], 2),
        "forward_seconds": round(timeit(forward, repeats=5), 4),
        "seconds_per_image": {},
        "cpu_seconds_per_image": {},
    }
    res["forward_cpu_seconds"] = round(_wall_and_cpu(forward, 5)[1], 4)
    slow = {"integrated_gradients": dict(n_steps=32), "occlusion": {}}
    for method in methods:
        if quick and method in slow:
            continue  # minutes on 2 cores; the full run measures them
        reps = {"gradcam": 5, "guided_gradcam": 2 if quick else 5}.get(method, 1)
        wall, cpu = _wall_and_cpu(lambda m=method: attribute(model, x, method=m, **slow.get(m, {})), reps)
        res["seconds_per_image"][method], res["cpu_seconds_per_image"][method] = round(wall, 4), round(cpu, 4)
    res["gradcam_over_forward"] = round(res["seconds_per_image"]["gradcam"] / res["forward_seconds"], 2)
    # The Space: probabilities + Grad-CAM in one pass vs predict_proba + a separate attribution call.
    predictor = Predictor(model, dcfg)
    explainer = Explainer(predictor)
    one, two, one_cpu, two_cpu = [], [], [], []
    for _ in range(7 if quick else 15):
        t0, c0 = time.perf_counter(), time.process_time()
        explainer.explain([image])
        one.append(time.perf_counter() - t0)
        one_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        predictor.predict_proba([image])
        attribute(predictor, [image], method="gradcam")
        two.append(time.perf_counter() - t0)
        two_cpu.append(time.process_time() - c0)
    res["explainer_p50_seconds"] = round(statistics.median(one), 4)
    res["predict_then_gradcam_p50_seconds"] = round(statistics.median(two), 4)
    res["explainer_p50_cpu_seconds"] = round(statistics.median(one_cpu), 4)
    res["predict_then_gradcam_p50_cpu_seconds"] = round(statistics.median(two_cpu), 4)
    res["load_average_1min_after"] = round(os.getloadavg()[0], 2)  # > cores: shared machine, times inflated
    res["explainer_over_separate"] = round(res["explainer_p50_seconds"] / res["predict_then_gradcam_p50_seconds"], 3)
    return res


@dataclass
class Arguments:
    model: list[str] | None = field(default=None, metadata={
        "help": "trained model folder(s) to score: --model A B (default: outputs/quickstart/model if it exists)"})
    train_tiny: bool = field(default=False, metadata={"help": "also train compact ResNet/MobileNetV2 here"})
    per_class: int | None = field(default=None, metadata={"help": "synthetic scenes per class (default 6 quick, 12)"})
    methods: str = ",".join(METHODS)
    speed_only: bool = field(default=False, metadata={"help": "only the swin-tiny timing section"})


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    methods = [m for m in opts.methods.split(",") if m]
    if opts.speed_only:
        return {"swin_tiny_224": _swin_tiny_speed(quick, methods)}
    per_class = opts.per_class or (6 if quick else 12)
    # quick: occlusion windows side by side (stride = window) instead of half-overlapping: ~4x cheaper
    attr_opts = {"n_steps": 16 if quick else 32, "deletion_steps": 10 if quick else 20, "occlusion_overlap": not quick}

    models: list[tuple[str, torch.nn.Module, DataConfig, dict]] = []
    paths = opts.model if opts.model else ([str(QUICKSTART)] if (QUICKSTART / "config.json").is_file() else [])
    for p in paths:
        pred = Predictor.from_pretrained(p)
        models.append((Path(p).parent.name if Path(p).name == "model" else Path(p).name, pred.model, pred.data_config,
                       {"source": f"trained model loaded from {p}"}))
    extra = ["resnet", "mobilenet_v2"] if (opts.train_tiny or not quick) else []
    if not models:
        extra = ["swin", *extra]
    for arch in extra:
        model, cfg, info = _train_tiny(list(PAPER_MINERALS), arch, steps=60 if quick else 150, seed=0)
        models.append((f"compact-{arch} (trained here)", model, cfg, info))

    results: dict[str, Any] = {"data": "SYNTHETIC scenes (hf_minerals.synthetic.render_scene) with ground-truth masks",
                               "scenes_per_class": per_class, "methods": methods,
                               "integrated_gradients_steps": attr_opts["n_steps"],
                               "occlusion": "window = side/8, stride = " + ("window/2" if attr_opts["occlusion_overlap"] else "window"),
                               "deletion_steps": attr_opts["deletion_steps"], "models": {}}
    for name, model, cfg, info in models:
        results["models"][name] = {**info, "model_type": model.config.model_type,
                                   **_faithfulness(name, model, cfg, methods, per_class, 224, attr_opts)}
    results["every_method_beats_random_energy"] = all(
        m["beats_random_energy"] for r in results["models"].values() for m in r["methods"].values())
    results["swin_tiny_224"] = _swin_tiny_speed(quick, methods)
    return results
