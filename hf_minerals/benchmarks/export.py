"""ONNX export: ONNX Runtime fp32 and int8 vs torch fp32 - model-only speed on the same preprocessed batch
(interleaved, best of) and top-1 agreement with torch on held-out images of a *trained* model.

``python scripts/benchmark.py export [--quick] [--model DIR]``

Models: the trained quickstart model (its test split: SYNTHETIC scenes) and the paper's Swin-T architecture
(random init: speed only; agreement on SYNTHETIC scenes). int8 counts as usable at >= 99 % agreement.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .common import fill_quick

QUICKSTART = Path("outputs/quickstart")
INT8_MIN_AGREEMENT = 0.99


@dataclass
class Arguments:
    model: str | None = field(default=None, metadata={"help": "trained model (default: the quickstart model)"})
    n: int | None = field(default=None, metadata={"help": "images for the Swin-T run (default 16 quick, 64)"})
    batch_size: int = 16
    threads: int = field(default=1, metadata={"help": "torch and ONNX Runtime threads"})


def _compare(folder: Path, out: Path, images: list, source: str, batch_size: int, threads: int,
             repeats: int) -> dict[str, Any]:
    from ..export import OnnxPredictor, export_onnx
    from ..predict import Predictor

    t0 = time.perf_counter()
    record = export_onnx(folder, out, int8=True, images=images, images_source=source)
    export_s = time.perf_counter() - t0
    torch_p = Predictor.from_pretrained(folder, batch_size=batch_size, bf16=False, backend="torch")
    runners = {"torch_fp32": torch_p,
               "onnx_fp32": OnnxPredictor(out, batch_size=batch_size, num_threads=threads),
               "onnx_int8": OnnxPredictor(out, int8=True, batch_size=batch_size, num_threads=threads)}
    pixel_values = torch_p.preprocess(images)
    probs = {k: p.probabilities(p.logits(pixel_values)) for k, p in runners.items()}  # warm-up + answers
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, p in runners.items():
            t1 = time.perf_counter()
            p.logits(pixel_values)
            times[k].append(time.perf_counter() - t1)
    best = {k: min(v) for k, v in times.items()}
    ref = probs["torch_fp32"].argmax(1)
    res: dict[str, Any] = {"images": len(images), "export_seconds": round(export_s, 2), "export": record,
                           "images_per_s": {k: len(images) / t for k, t in best.items()},
                           "speed_vs_torch_fp32": {k: best["torch_fp32"] / t for k, t in best.items()},
                           "seconds_all": times}
    for k in ("onnx_fp32", "onnx_int8"):
        res[f"{k}_top1_agreement"] = float((probs[k].argmax(1) == ref).mean())
        res[f"{k}_max_prob_diff"] = float(np.abs(probs[k] - probs["torch_fp32"]).max())
    res["int8_usable"] = res["onnx_int8_top1_agreement"] >= INT8_MIN_AGREEMENT
    return res


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    fill_quick(opts, quick, n=(16, 64))
    torch.set_num_threads(opts.threads)
    from ..data.loading import load_split
    from .predict import save_random_model, synthetic_images

    model = Path(opts.model) if opts.model else QUICKSTART / "model"
    if not (model / "config.json").exists():
        raise SystemExit(f"the export benchmark needs a trained model: {model} not found (make quickstart, or --model)")
    repeats = 2 if quick else 3
    result: dict[str, Any] = {"threads": opts.threads, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = QUICKSTART / "dataset"
        if opts.model is None and dataset.is_dir():
            test, _ = load_split(dataset, "test")
            images = [im.convert("RGB") for im in test["image"]]
            source = f"{len(images)} images of the quickstart test split (SYNTHETIC)"
        else:
            images, source = synthetic_images(opts.n, 224), f"{opts.n} SYNTHETIC scenes"
        r = _compare(model, Path(tmp) / "trained", images, source, opts.batch_size, opts.threads, repeats)
        result["models"][f"{model} (trained)"] = {"inputs": source, **r}
        swin = save_random_model("swin-tiny", Path(tmp) / "swin", ("arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite"))
        r = _compare(swin, Path(tmp) / "swin-onnx", synthetic_images(opts.n, 224), f"{opts.n} SYNTHETIC scenes",
                     opts.batch_size, opts.threads, repeats)
        result["models"]["swin-tiny (paper architecture, random init: speed only)"] = {"inputs": f"{opts.n} SYNTHETIC scenes", **r}
    trained = result["models"][f"{model} (trained)"]
    swin_r = result["models"]["swin-tiny (paper architecture, random init: speed only)"]
    result["headline"] = {
        "trained_onnx_fp32_speed_vs_torch_fp32": trained["speed_vs_torch_fp32"]["onnx_fp32"],
        "trained_onnx_int8_speed_vs_torch_fp32": trained["speed_vs_torch_fp32"]["onnx_int8"],
        "trained_onnx_fp32_top1_agreement": trained["onnx_fp32_top1_agreement"],
        "trained_onnx_int8_top1_agreement": trained["onnx_int8_top1_agreement"],
        "trained_int8_usable": trained["int8_usable"],
        "swin_tiny_onnx_fp32_speed_vs_torch_fp32": swin_r["speed_vs_torch_fp32"]["onnx_fp32"],
        "swin_tiny_onnx_int8_speed_vs_torch_fp32": swin_r["speed_vs_torch_fp32"]["onnx_int8"],
        "swin_tiny_onnx_int8_top1_agreement": swin_r["onnx_int8_top1_agreement"],
        "int8_min_agreement": INT8_MIN_AGREEMENT,
    }
    return result
