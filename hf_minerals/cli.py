"""``hf-minerals`` console entry point: one sub-command per task, each delegating to a library module.

Each entry maps a sub-command to ``module:function``; the function takes the remaining argv.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function(argv)", help)
    "benchmark": ("hf_minerals.benchmarks.common:main", "run a benchmark (JSON out)"),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: hf-minerals COMMAND [ARGS...]\n\ncommands:")
        for name, (_, help_) in sorted(COMMANDS.items()):
            print(f"  {name:<14} {help_}")
        sys.exit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.exit(f"hf-minerals: unknown command '{name}' (try: {', '.join(sorted(COMMANDS))})")
    module, func = COMMANDS[name][0].split(":")
    getattr(importlib.import_module(module), func)(rest)


if __name__ == "__main__":
    main()
