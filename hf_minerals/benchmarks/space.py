"""Space latency: prediction + Grad-CAM for one 224 px image through the Space's service
(``hf_minerals.service.MineralService``), against the naive path (``transformers.pipeline()`` for the
label, then a separate Captum Grad-CAM pass), plus a loopback load test (50 requests from 8
gradio_client clients to ``python space/app.py`` in its own process) with p50/p95 and the failure count.

The model is swin-tiny: the full-size architecture of ``microsoft/swin-tiny-patch4-window7-224`` (its
config, bundled in ``hf_minerals/model_configs``) with RANDOM weights. Latency does not depend on the
weights, so the timings hold for a trained model; the predictions themselves mean nothing.

    python scripts/benchmark.py space [--quick] [--reps N] [--requests 50] [--clients 8]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..imageio import load_image
from .common import fill_quick

SWIN_TINY = "microsoft/swin-tiny-patch4-window7-224"
SPACE_APP = Path(__file__).resolve().parents[2] / "space" / "app.py"


def _percentiles(times: list[float]) -> dict[str, float]:
    a = np.asarray(times)
    return {"p50_s": round(float(np.percentile(a, 50)), 4), "p95_s": round(float(np.percentile(a, 95)), 4),
            "min_s": round(float(a.min()), 4), "mean_s": round(float(a.mean()), 4), "n": len(a)}


def _interleaved(fns: dict[str, Any], reps: int, warmup: int = 2) -> dict[str, list[float]]:
    """Time each function ``reps`` times, one call of each in turn: drift on a shared machine hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def _swin_tiny_folder(out: Path) -> Path:
    """Random-init swin-tiny (real architecture) saved like a trained model folder."""
    from hf_minerals.minerals import PAPER_MINERALS
    from hf_minerals.modeling import build_classifier, bundled_config_dir

    torch.manual_seed(0)  # the bundled copy of the Hub config: no network, same architecture
    model, processor = build_classifier(str(bundled_config_dir(SWIN_TINY)), list(PAPER_MINERALS), init="scratch")
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def _naive(folder: Path, image_path: Path):
    """pipeline() for the label, then a separate Captum Grad-CAM pass on the processor's pixel values."""
    from transformers import pipeline

    from hf_minerals.explain import attribute, overlay

    pipe = pipeline("image-classification", model=str(folder), device="cpu")

    def run() -> None:
        image = load_image(image_path)
        pipe(image, top_k=5)
        pixel_values = pipe.image_processor(images=image, return_tensors="pt")["pixel_values"]
        cam = attribute(pipe.model, pixel_values, method="gradcam")[0]
        overlay(image, cam, alpha=0.5)

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_space(folder: Path, limits: Any) -> tuple[subprocess.Popen, str]:
    """``python space/app.py`` as a user runs it (its own process, the same limits), once it answers."""
    import httpx

    if not SPACE_APP.is_file():
        raise FileNotFoundError(f"{SPACE_APP} not found: run the space benchmark from a checkout of the repository")
    port = _free_port()
    env = {**os.environ, "HF_MINERALS_CONCURRENCY": str(limits.concurrency),
           "HF_MINERALS_QUEUE_SIZE": str(limits.queue_size)}
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would block the server
    proc = subprocess.Popen([sys.executable, str(SPACE_APP), "--model", str(folder), "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"space/app.py exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise TimeoutError("space/app.py did not answer within 180 s")


def _load_test(folder: Path, service: Any, image_path: Path, requests: int, clients: int) -> dict[str, Any]:
    """``requests`` explain calls from ``clients`` concurrent gradio_client clients to the app on loopback."""
    from gradio_client import Client, handle_file

    proc, url = _serve_space(folder, service.limits)
    try:
        pool_clients = [Client(url, verbose=False) for _ in range(clients)]
        pool_clients[0].predict(handle_file(image_path), "gradcam", 0.5, 0.5, api_name="/explain")  # warm-up

        def one(i: int) -> tuple[float, str | None]:
            t0 = time.perf_counter()
            try:
                pool_clients[i % clients].predict(handle_file(image_path), "gradcam", 0.5, 0.5, api_name="/explain")
                return time.perf_counter() - t0, None
            except Exception as exc:  # noqa: BLE001 - a failure is counted, not fatal
                return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as ex:
            results = list(ex.map(one, range(requests)))
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    errors = [e for _, e in results if e]
    return {"requests": requests, "clients": clients, "endpoint": "/explain (gradcam)", "failures": len(errors),
            "errors": errors[:5], **_percentiles([t for t, _ in results]), "wall_s": round(wall, 2),
            "throughput_rps": round(requests / wall, 2), "concurrency_limit": service.limits.concurrency}


def _grains_during_maps(folder: Path, service: Any, image_path: Path, section_path: Path, n: int) -> dict[str, Any]:
    """p95 of ``/predict`` (one grain) idle, then while ``/map_section`` runs back to back on a section."""
    import threading

    from gradio_client import Client, handle_file

    proc, url = _serve_space(folder, service.limits)
    try:
        grain, mapper = Client(url, verbose=False), Client(url, verbose=False)
        grain.predict(handle_file(image_path), 0.5, api_name="/predict")  # warm-up

        def grains() -> tuple[list[float], list[str]]:
            times, errors = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    grain.predict(handle_file(image_path), 0.5, api_name="/predict")
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(f"{type(exc).__name__}: {exc}")
                times.append(time.perf_counter() - t0)
            return times, errors

        idle, idle_err = grains()
        stop, maps, map_err = threading.Event(), [], []

        def keep_mapping() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    mapper.predict(handle_file(section_path), 224, 0.5, api_name="/map_section")
                    maps.append(time.perf_counter() - t0)
                except Exception as exc:  # noqa: BLE001 - counted
                    map_err.append(f"{type(exc).__name__}: {exc}")

        bg = threading.Thread(target=keep_mapping)
        bg.start()
        time.sleep(3.0)  # the first map is past upload and decoding, into its tiles
        busy, busy_err = grains()
        stop.set()
        bg.join(timeout=600)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    idle_s, busy_s = _percentiles(idle), _percentiles(busy)
    return {"grain_requests_each": n, "idle": idle_s, "during_map": busy_s,
            "p95_ratio_during_map_vs_idle": round(busy_s["p95_s"] / idle_s["p95_s"], 2),
            "failures": len(idle_err) + len(busy_err) + len(map_err), "errors": (idle_err + busy_err + map_err)[:5],
            "maps_completed": len(maps), "map_seconds": [round(t, 2) for t in maps],
            "map_batch": service.limits.map_batch, "target_p95_ratio": 2.0,
            "how": "grain /predict calls from one client; section maps (/map_section, tile 224) back to back from "
                   "another; the map takes the model per batch of map_batch tiles through a FIFO lock"}


@dataclass
class Arguments:
    reps: int | None = field(default=None, metadata={"help": "timed calls per path (default 12 quick, 50)"})
    requests: int = 50
    clients: int = 8
    grains_during_map: int | None = field(default=None, metadata={
        "help": "grain requests timed idle and again while section maps run (default 15 quick, 40)"})
    only_map_fairness: bool = field(default=False, metadata={"help": "only the grains-during-map measurement"})


def run(quick: bool, opts: Arguments) -> dict[str, Any]:
    fill_quick(opts, quick, reps=(12, 50), grains_during_map=(15, 40))
    from hf_minerals.service import MineralService
    from hf_minerals.synthetic import render_scene, render_section

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = _swin_tiny_folder(Path(tmp) / "swin-tiny-random")
        image_path = Path(tmp) / "synthetic_pyrite_224.png"
        Image.fromarray(render_scene("pyrite", size=224, seed=0).image).save(image_path)
        service = MineralService.from_pretrained(str(folder))
        section_path = Path(tmp) / "synthetic_section_2048x1536.png"
        Image.fromarray(render_section(2048, 1536, seed=7).image).save(section_path)
        fairness = _grains_during_maps(folder, service, image_path, section_path, opts.grains_during_map)
        if opts.only_map_fairness:
            return {"model": f"{SWIN_TINY} architecture, RANDOM init (timing only)", "grains_during_map": fairness,
                    "headline": {"grain_p95_during_map_vs_idle": fairness["p95_ratio_during_map_vs_idle"],
                                 "grain_p95_idle_s": fairness["idle"]["p95_s"],
                                 "grain_p95_during_map_s": fairness["during_map"]["p95_s"],
                                 "failures": fairness["failures"], "maps_completed": fairness["maps_completed"],
                                 "target_ratio": 2.0}}

        times = _interleaved({
            "app": lambda: service.explain(str(image_path), "gradcam", 0.5, 0.5),
            "naive": _naive(folder, image_path),
            "predict": lambda: service.predict(str(image_path), 0.5),
        }, opts.reps)
        slower = "not measured with --quick" if quick else {
            m: _percentiles(_interleaved({m: lambda m=m: service.explain(str(image_path), m, 0.5, 0.5)}, 3, warmup=0)[m])
            for m in ("integrated_gradients", "occlusion")}
        load = _load_test(folder, service, image_path, opts.requests, opts.clients)
    app_stats, naive_stats = _percentiles(times["app"]), _percentiles(times["naive"])
    return {
        "model": f"{SWIN_TINY} architecture, RANDOM init (timing only; predictions meaningless)",
        "image": "one synthetic 224x224 PNG (hf_minerals.synthetic), loaded from disk each call",
        "app_predict_and_gradcam": app_stats,
        "app_predict_only": _percentiles(times["predict"]),
        "naive_pipeline_then_captum": naive_stats,
        "app_slower_methods": slower,
        "speedup_p50_vs_naive": round(naive_stats["p50_s"] / app_stats["p50_s"], 2),
        "target_p50_under_1s": app_stats["p50_s"] < 1.0,
        "load_test": load,
        "grains_during_map": fairness,
        "machine_load_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2),
                              "note": "the machine is shared; a load above its core count inflates every timing"},
        "what_is_timed": "app: hf_minerals.service.MineralService.explain (load_image -> one forward/backward with Grad-CAM -> "
                         "probabilities, decision, overlay); naive: PIL open -> pipeline() -> processor -> "
                         "Captum LayerGradCam (second forward + backward) -> overlay",
    }
