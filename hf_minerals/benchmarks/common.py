"""What every benchmark shares: machine facts, peak RSS, timing, JSON output."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

BENCHMARKS = ("synthetic", "train", "explain", "predict", "map", "space", "real-robustness")
#: benchmark name -> module in hf_minerals.benchmarks, where they differ
MODULES = {"real-robustness": "robustness"}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timeit(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """Best-of-``repeats`` wall time in seconds (best-of damps the noise of a shared machine)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__)
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="small sizes; finishes in < 3 min on 2 cores")
    parser.add_argument("--output", default=None, help="JSON path (default outputs/benchmarks/NAME.json)")
    args, rest = parser.parse_known_args(argv)
    torch.set_flush_denormal(True)  # random-init conv nets hit denormals on CPU
    module = importlib.import_module(f"hf_minerals.benchmarks.{MODULES.get(args.name, args.name)}")
    t0 = time.perf_counter()
    result = module.run(quick=args.quick, args=rest)
    result = {
        "benchmark": args.name,
        "quick": args.quick,
        **result,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine": machine_info(),
    }
    out = Path(args.output or f"outputs/benchmarks/{args.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    print(json.dumps(result))
    return result
