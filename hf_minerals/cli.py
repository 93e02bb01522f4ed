"""``hf-minerals`` console entry point: one sub-command per task, each delegating to a library module.

Each entry maps a sub-command to ``module:function``; the function takes the remaining argv and parses
it with ``hf_minerals.cli_args`` (dataclasses, ``--config FILE.yaml``, underscore flags, ``args.yaml``).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function(argv)", help)
    "benchmark": ("hf_minerals.benchmarks.common:main", "run a benchmark (JSON out)"),
    "synthetic": ("hf_minerals.synthetic.cli:main", "write SYNTHETIC scenes / a section / a gallery (make_synthetic.py)"),
    "train": ("hf_minerals.training:main", "train a classifier from a YAML recipe + CLI overrides (Trainer)"),
    "quickstart": ("hf_minerals.quickstart:main", "offline demo: synthetic data -> compact Swin -> eval + card"),
    "build-dataset": ("hf_minerals.data.cli:main", "build a leak-free mineral image data set + report + card"),
    "publish": ("hf_minerals.hub:main", "push a data set (model, space) to the Hub with its card"),
    "evaluate": ("hf_minerals.evaluation:main", "evaluate a model on a split: metrics JSON, tables, plots"),
    "compare": ("hf_minerals.comparison:main", "train + evaluate recipes x inits: comparison table and chart"),
    "predict": ("hf_minerals.predict:main", "classify images -> CSV of top-k minerals"),
    "calibrate": ("hf_minerals.calibration:main", "fit temperature + unknown threshold on validation data"),
    "map": ("hf_minerals.mapping:main", "map a whole section: mineral map, overlay, modal abundance"),
    "explain": ("hf_minerals.explain.command:main", "attribution maps (Grad-CAM, IG, occlusion): overlays + grid"),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: hf-minerals COMMAND [--config FILE.yaml] [--field value ...]\n\ncommands:")
        for name, (_, help_) in sorted(COMMANDS.items()):
            print(f"  {name:<14} {help_}")
        print("\n`hf-minerals COMMAND --help` lists its options; each run writes its resolved args.yaml.")
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.exit(f"hf-minerals: unknown command '{name}' (try: {', '.join(sorted(COMMANDS))})")
    module, func = COMMANDS[name][0].split(":")
    getattr(importlib.import_module(module), func)(rest)


if __name__ == "__main__":
    main()
