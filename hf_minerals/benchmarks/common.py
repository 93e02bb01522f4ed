"""The benchmark runner: picks a benchmark module, adds wall time, peak RSS and machine facts, writes JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..runtime import machine_info, peak_rss_mb

BENCHMARKS = ("synthetic", "train", "explain", "predict", "map", "space")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="benchmark.py", description=__doc__)
    parser.add_argument("name", choices=BENCHMARKS)
    parser.add_argument("--quick", action="store_true", help="small sizes; finishes in < 3 min on 2 cores")
    parser.add_argument("--output", default=None, help="JSON path (default outputs/benchmarks/NAME.json)")
    args, rest = parser.parse_known_args(argv)
    torch.set_flush_denormal(True)  # random-init conv nets hit denormals on CPU
    module = importlib.import_module(f"hf_minerals.benchmarks.{args.name}")
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
