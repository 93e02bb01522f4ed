#!/usr/bin/env python
"""Run a benchmark: ``python scripts/benchmark.py {synthetic,train,explain,predict,map,space,openset} [--quick] [--output PATH]``.

Prints one JSON object on the last stdout line and writes it (default ``outputs/benchmarks/NAME.json``).
See docs/benchmarks.md.
"""

from hf_minerals.benchmarks.common import main

if __name__ == "__main__":
    main()
