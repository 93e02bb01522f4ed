"""Benchmarks: ``scripts/benchmark.py NAME [--quick] [--output_file PATH]``.

Each NAME is a module here exposing ``run(quick: bool, args: list[str]) -> dict``. Figures are
ratios against a baseline measured in the same run, plus raw numbers and the machine; the
runner adds the machine facts, prints one JSON object on the last stdout line and writes it.
"""
