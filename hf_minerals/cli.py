"""``hf-minerals`` console entry point: one sub-command per task, each delegating to a library module.

Each entry maps a sub-command to ``module:function``; the function takes the remaining argv and parses
it with ``hf_minerals.cli_args`` (dataclasses, ``--config FILE.yaml``, underscore flags, ``args.yaml``). Every
command (here and in ``scripts/``) runs through ``run``: a command that cannot do its job exits non-zero
with one line that names the cause, never a traceback, unless ``--debug`` (or ``HF_MINERALS_DEBUG=1``) asks
for it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

DEBUG_FLAG = "--debug"

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function(argv)", help)
    "benchmark": ("hf_minerals.benchmarks.common:main", "run a benchmark (JSON out)"),
    "synthetic": ("hf_minerals.synthetic.cli:main", "write SYNTHETIC scenes / a section / a gallery (make_synthetic.py)"),
    "train": ("hf_minerals.training:main", "train a classifier from a YAML recipe + CLI overrides (Trainer)"),
    "quickstart": ("hf_minerals.quickstart:main", "offline demo: synthetic data -> compact Swin -> eval + card"),
    "pretrain": ("hf_minerals.training.pretrain:main", "mineral-pretrained weights from streamed SYNTHETIC scenes (offline ImageNet twin)"),
    "build-dataset": ("hf_minerals.data.cli:main", "build a leak-free mineral image data set + report + card"),
    "publish": ("hf_minerals.hub:main", "push a data set (model, space) to the Hub with its card"),
    "evaluate": ("hf_minerals.evaluation:main", "evaluate a model on a split: metrics JSON, tables, plots"),
    "compare": ("hf_minerals.comparison:main", "train + evaluate recipes x inits: comparison table and chart"),
    "predict": ("hf_minerals.predict:main", "classify images -> CSV of top-k minerals"),
    "calibrate": ("hf_minerals.calibration:main", "fit temperature + unknown threshold on validation data"),
    "calibrate-images": ("hf_minerals.reflectance:main", "raw photos -> reflectance (%) with dark + white-standard frames"),
    "map": ("hf_minerals.mapping:main", "map a whole section: mineral map, overlay, modal abundance"),
    "export": ("hf_minerals.export:main", "ONNX copy of a model (ONNX Runtime; --int8 quantised) for machines without torch"),
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
    result = guarded(lambda a: getattr(importlib.import_module(module), func)(a), rest, prog=f"hf-minerals {name}")
    if isinstance(result, int) and not isinstance(result, bool) and result:
        sys.exit(result)


def describe_error(exc: BaseException) -> str:
    """One line that names the real cause of ``exc`` (what the user can act on)."""
    from .hub_access import describe_hub_problem

    hub = describe_hub_problem(exc)
    if hub:
        return hub
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, FileNotFoundError):
        return f"not found: {exc.filename or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller image, batch or tile)"
    raw = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else str(exc)
    text = " ".join(line.strip() for line in raw.splitlines() if line.strip())
    if isinstance(exc, KeyError) and " " in text:  # a sentence raised as KeyError (e.g. "no split 'x'"): say it
        return text
    # a bug (TypeError, AttributeError, ...) keeps its type name: the user can report it; --debug shows where
    generic = isinstance(exc, (ValueError, RuntimeError, OSError)) or type(exc).__name__.endswith("Error")
    return text if text and generic and type(exc) not in (KeyError, IndexError, TypeError, AttributeError) \
        else f"{type(exc).__name__}: {text or 'no message'}"


def guarded(main_fn: Callable[[list[str]], Any], argv: list[str] | None = None, prog: str | None = None) -> Any:
    """Run a command's ``main(argv)`` and return what it returns; on failure exit 1 with one clear line.

    ``--debug`` anywhere in ``argv`` (removed before ``main`` sees it) or ``HF_MINERALS_DEBUG=1`` shows the
    traceback instead. ``SystemExit`` (argparse, explicit exits) passes through unchanged.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0] or "hf-minerals")
    debug = DEBUG_FLAG in argv or os.environ.get("HF_MINERALS_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        code = main_fn(argv)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place a command's failure becomes one line
        if debug:
            raise
        print(f"{prog}: error: {describe_error(exc)} (run with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        sys.exit(1)
    return code


def run(main_fn: Callable[[list[str]], Any], argv: list[str] | None = None, prog: str | None = None) -> None:
    """``guarded`` for a script's ``__main__``: exit with ``main``'s return code when it is a non-zero int."""
    code = guarded(main_fn, argv, prog)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
