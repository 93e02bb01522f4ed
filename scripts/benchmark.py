#!/usr/bin/env python
"""Run a benchmark: ``python scripts/benchmark.py {synthetic,train,explain,predict,map,space,openset} [--quick] [--output_file PATH]``.

Prints one JSON object on the last stdout line and writes it (default ``outputs/benchmarks/NAME.json``).
See docs/benchmarks.md.

``--config FILE.yaml`` gives any option from YAML (flags override it; unknown keys stop with a hint);
the resolved arguments go to ``NAME.json.args.yaml`` beside the JSON, itself a valid ``--config``.
"""

from hf_minerals.benchmarks.common import main
from hf_minerals.cli import run

if __name__ == "__main__":
    run(main)
