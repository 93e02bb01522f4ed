"""The benchmark runner: picks a benchmark module, adds wall time, peak RSS and machine facts, writes JSON."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..runtime import machine_info, peak_rss_mb

BENCHMARKS = {
    "synthetic": "synthetic scene speed and the domain-shift experiment",
    "train": "Trainer overhead against a bare PyTorch loop",
    "explain": "attribution speed and faithfulness",
    "predict": "Predictor against the transformers pipeline",
    "map": "whole-section mapping speed, memory and accuracy",
    "space": "the Space's service against a naive implementation",
    "export": "ONNX Runtime fp32 / int8 against torch fp32 (speed, agreement)",
    "openset": "AUROC of the 'not a known mineral' score on held-out negative kinds and unseen minerals",
    "real-robustness": "SYNTHETIC lab shifts (halogen, exposure, white balance, camera) and the shortcut controls",
}
#: benchmark name -> module in hf_minerals.benchmarks, where they differ
MODULES = {"real-robustness": "robustness"}


def fill_quick(opts: Any, quick: bool, **defaults: tuple[Any, Any]) -> Any:
    """Fields left ``None`` take their (quick, full) default: ``fill_quick(opts, quick, reps=(12, 50))``."""
    for name, (small, full) in defaults.items():
        if getattr(opts, name) is None:
            setattr(opts, name, small if quick else full)
    return opts


@dataclass
class BenchmarkArguments:
    """What every benchmark takes; each module adds its own ``Arguments`` dataclass."""

    quick: bool = field(default=False, metadata={"help": "small sizes; finishes in < 3 min on 2 cores"})
    output_file: str | None = field(default=None, metadata={
        "help": "JSON path (default outputs/benchmarks/NAME.json; arguments beside it in <JSON>.args.yaml)"})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``hf-minerals benchmark NAME [--quick] [--config FILE.yaml] [--field value ...]``."""
    from ..cli_args import args_file_for, parse_command_line, save_args, split_subcommand

    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["table"]:  # docs/benchmarks.md figures from the committed docs/benchmarks/*.json
        from .table import update_doc

        print(update_doc(Path("docs/benchmarks.md"), Path("docs/benchmarks")))
        return {}
    load_start = os.getloadavg()
    name, rest = split_subcommand(argv, BENCHMARKS, "hf-minerals benchmark")
    module = importlib.import_module(f"hf_minerals.benchmarks.{MODULES.get(name, name)}")
    prog = f"hf-minerals benchmark {name}"
    args, opts = parse_command_line([BenchmarkArguments, module.Arguments], rest, prog=prog, description=module.__doc__)
    torch.set_flush_denormal(True)  # random-init conv nets hit denormals on CPU
    t0 = time.perf_counter()
    result = module.run(quick=args.quick, opts=opts)
    result = {
        "benchmark": name,
        "quick": args.quick,
        **result,
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "command": "scripts/benchmark.py " + " ".join(given),
        "load_average": {"start_1_5_15min": [round(x, 2) for x in load_start],
                         "end_1_5_15min": [round(x, 2) for x in os.getloadavg()]},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine": machine_info(),
    }
    out = Path(args.output_file or f"outputs/benchmarks/{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    save_args(args_file_for(out), args, opts, command=prog)
    print(f"wrote {out} and {args_file_for(out)}", file=sys.stderr)
    print(json.dumps(result))
    return result
