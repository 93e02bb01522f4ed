"""Predictor speed: images/s vs ``transformers.pipeline`` on the same model and images, bf16 and
channels_last measured, and the share of this CPU's measured fp32 matmul peak the forward pass reaches.

``python scripts/benchmark.py predict [--quick] [--model DIR] [--n 64] [--batch_size 16]``

Models: the paper's Swin-T architecture (random init - speed does not depend on the weights) at 224 px,
ResNet-50 for channels_last, and the quickstart model when it exists. Images: SYNTHETIC scenes.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..modeling import label_config
from ..predict import Predictor, bf16_supported
from ..runtime import timeit
from .common import fill_quick

QUICKSTART_MODEL = Path("outputs/quickstart/model")


def matmul_peak_gflops(n: int = 2048, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """Measured dense matmul throughput (GFLOP/s) with torch's current thread setting."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    best = timeit(lambda: torch.mm(a, b), repeats=repeats, warmup=2)
    return 2 * n**3 / best / 1e9


def forward_gflops(model: torch.nn.Module, size: tuple[int, int]) -> float:
    """FLOPs of one image's forward pass (torch.utils.flop_counter), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(pixel_values=torch.zeros(1, 3, *size))
    return counter.get_total_flops() / 1e9


def save_random_model(arch: str, folder: Path, labels: tuple[str, ...]) -> Path:
    """Paper architectures at their real size and preprocessing, random init (for speed only)."""
    from transformers import (
        AutoModelForImageClassification,
        ConvNextImageProcessor,
        ResNetConfig,
        SwinConfig,
        ViTImageProcessor,
    )

    common = label_config(labels)
    if arch == "swin-tiny":
        cfg = SwinConfig(**common)  # defaults = microsoft/swin-tiny-patch4-window7-224
        proc = ViTImageProcessor(size={"height": 224, "width": 224}, resample=3)
    elif arch == "resnet-50":
        cfg = ResNetConfig(**common)  # defaults = microsoft/resnet-50
        proc = ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875)
    else:
        raise ValueError(arch)
    torch.manual_seed(0)
    AutoModelForImageClassification.from_config(cfg).save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def synthetic_images(n: int, size: int) -> list:
    from PIL import Image

    from ..minerals import PAPER_MINERALS
    from ..synthetic import render_scene

    return [Image.fromarray(render_scene(PAPER_MINERALS[i % 5], size=size, seed=i).image) for i in range(n)]


def bench_model(folder: Path, images: list, batch_size: int, repeats: int) -> dict[str, Any]:
    """pipeline vs Predictor (fp32, bf16) on the same images; agreement; FLOPs and matmul share."""
    from transformers import pipeline

    n = len(images)
    fp32 = Predictor.from_pretrained(folder, batch_size=batch_size, use_calibration=False)
    pipe = pipeline("image-classification", model=str(folder), batch_size=batch_size)
    k = len(fp32.labels)
    t_pipe = timeit(lambda: pipe(images, top_k=k), repeats=repeats)
    t_fp32 = timeit(lambda: fp32.predict(images), repeats=repeats)
    p_fp32 = fp32.predict_proba(images)
    ref = pipe(images, top_k=k)
    p_pipe = np.array([[{d["label"]: d["score"] for d in out}[name] for name in fp32.labels] for out in ref])
    bf16 = Predictor.from_pretrained(folder, batch_size=batch_size, bf16=True, use_calibration=False)
    t_bf16 = timeit(lambda: bf16.predict(images), repeats=repeats)
    p_bf16 = bf16.predict_proba(images)
    pixel_values = fp32.preprocess(images)
    t_model = timeit(lambda: fp32.logits(pixel_values), repeats=repeats)
    gflop = forward_gflops(fp32.model, fp32.data_config.crop)
    return {
        "model_type": fp32.model.config.model_type,
        "input": list(fp32.data_config.crop),
        "gflop_per_image": round(gflop, 4),
        "images": n,
        "batch_size": batch_size,
        "pipeline_images_per_s": n / t_pipe,
        "predictor_fp32_images_per_s": n / t_fp32,
        "predictor_bf16_images_per_s": n / t_bf16,
        "model_only_fp32_images_per_s": n / t_model,
        "ratio_fp32_vs_pipeline": t_pipe / t_fp32,
        "ratio_bf16_vs_pipeline": t_pipe / t_bf16,
        "fp32_vs_pipeline_max_abs_prob_diff": float(np.abs(p_fp32 - p_pipe).max()),
        "fp32_vs_pipeline_top1_agreement": float((p_fp32.argmax(1) == p_pipe.argmax(1)).mean()),
        "bf16_vs_fp32_max_abs_prob_diff": float(np.abs(p_bf16 - p_fp32).max()),
        "bf16_vs_fp32_top1_agreement": float((p_bf16.argmax(1) == p_fp32.argmax(1)).mean()),
        "bf16_channels_last": bf16.channels_last,
        "_gflop": gflop,
        "_t_fp32": t_fp32,
        "_t_model": t_model,
    }


def bench_channels_last(folder: Path, images: list, batch_size: int, repeats: int) -> dict[str, float]:
    """Model-only images/s of a conv net with/without channels_last, fp32 and bf16."""
    out = {}
    for bf16 in (False, True):
        for cl in (False, True):
            p = Predictor.from_pretrained(folder, batch_size=batch_size, bf16=bf16, channels_last=cl)
            x = p.preprocess(images)
            out[f"{'bf16' if bf16 else 'fp32'}{'_channels_last' if cl else ''}_images_per_s"] = len(images) / timeit(
                lambda p=p, x=x: p.logits(x), repeats=repeats)
    return out


@dataclass
class Arguments:
    model: str | None = field(default=None, metadata={
        "help": "also benchmark this model (default: quickstart model if present)"})
    n: int | None = field(default=None, metadata={"help": "images (default 16 quick, 64)"})
    batch_size: int = 16
    threads: int | None = field(default=None, metadata={"help": "torch threads (default: torch's choice)"})


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    fill_quick(opts, quick, n=(16, 64))
    repeats = 2 if quick else 3
    torch.set_flush_denormal(True)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    labels = ("arsenopyrite", "chalcopyrite", "gold", "pyrite", "stibnite")
    t0 = time.perf_counter()
    images = synthetic_images(opts.n, 224)
    result: dict[str, Any] = {
        "images": f"{opts.n} SYNTHETIC scenes (hf_minerals.synthetic.render_scene, 224 px)",
        "bf16_native": bf16_supported(),
        "torch_threads": torch.get_num_threads(),
        "render_seconds": round(time.perf_counter() - t0, 1),
    }
    peak = matmul_peak_gflops()
    result["matmul_fp32_peak_gflops"] = peak
    result["matmul_bf16_peak_gflops"] = matmul_peak_gflops(dtype=torch.bfloat16) if bf16_supported() else None
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"swin-tiny (paper architecture, random init: speed only)":
                save_random_model("swin-tiny", Path(tmp) / "swin", labels)}
        model = Path(opts.model) if opts.model else (QUICKSTART_MODEL if QUICKSTART_MODEL.is_dir() else None)
        if model is not None:
            runs[f"{model} (trained)"] = model
        result["models"] = {}
        for name, folder in runs.items():
            r = bench_model(folder, images, opts.batch_size, repeats)
            gflop, t_fp32, t_model = r.pop("_gflop"), r.pop("_t_fp32"), r.pop("_t_model")
            r["fp32_share_of_matmul_peak"] = gflop * opts.n / t_model / peak
            r["fp32_share_of_matmul_peak_end_to_end"] = gflop * opts.n / t_fp32 / peak
            result["models"][name] = r
        cnn = save_random_model("resnet-50", Path(tmp) / "resnet", labels)
        result["channels_last_resnet50_model_only"] = bench_channels_last(cnn, images[: max(8, opts.n // 3)],
                                                                          opts.batch_size, repeats)
    main = next(iter(result["models"].values()))
    result["headline"] = {
        "ratio_fp32_vs_pipeline": main["ratio_fp32_vs_pipeline"],
        "ratio_bf16_vs_pipeline": main["ratio_bf16_vs_pipeline"],
        "bf16_vs_fp32_top1_agreement": main["bf16_vs_fp32_top1_agreement"],
        "fp32_share_of_matmul_peak": main["fp32_share_of_matmul_peak"],
        "target_ratio": 2.0,
    }
    return result
