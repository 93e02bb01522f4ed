"""One argument system for every command: dataclasses, a YAML ``--config``, CLI flags on top, ``args.yaml`` out.

Like TRL's ``TrlParser``: each command declares its options as dataclasses; ``--config file.yaml``
sets defaults (required fields included), any ``--field value`` overrides them, and a key no
dataclass knows - in the YAML or on the command line - is an error with a "did you mean" hint, so a
typo never silently does nothing. One flag spelling, the ``transformers`` underscore style
(``--top_k``, ``--output_dir``); ``--top-k`` is an unknown flag whose hint names ``--top_k``. Every
command writes its resolved arguments with :func:`save_args` (``args.yaml`` in its output folder, or
``<file>.args.yaml`` next to a one-file output), which is itself a valid ``--config``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from collections.abc import Collection, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import yaml
from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A config file or command line the parser cannot accept (unknown key, bad value, unreadable YAML)."""


class ArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` with one flag spelling and errors raised as :class:`ConfigError`."""

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        # transformers adds a --top-k alias for every --top_k; one spelling keeps help and docs unambiguous.
        keep = [n for n in names if not (n.startswith("--") and "-" in n[2:])]
        return super().add_argument(*(keep or names), **kwargs)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def field_names(classes: Sequence[type]) -> list[str]:
    """The keys a config file or command line may set for these dataclasses."""
    return [f.name for cls in classes for f in dataclasses.fields(cls) if f.init]


def unknown_error(keys: Sequence[str], where: str, known: Collection[str], prog: str, flag: bool = False) -> ConfigError:
    """``unknown ...: '--top-k' (did you mean --top_k?)`` - the hint tries the underscore spelling first."""
    lines = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=2)
        if key.replace("-", "_") in known:
            close = [key.replace("-", "_")]
        shown = [("--" if flag else "") + c for c in close]
        lines.append(f"'{'--' if flag else ''}{key}'" + (f" (did you mean {' or '.join(shown)}?)" if shown else ""))
    return ConfigError(f"unknown {where}: {', '.join(lines)}. See `{prog} --help`.")


def load_config(path: str | Path, known: Collection[str], prog: str = "hf-minerals") -> dict[str, Any]:
    """Read a YAML config: a flat mapping of argument names to values, unknown names rejected."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of argument: value, got {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - set(known))
    if unknown:
        raise unknown_error(unknown, f"key(s) in {path}", known, prog)
    return data


def _check_duplicates(argv: Sequence[str]) -> None:
    seen: set[str] = set()
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name = token[2:].split("=", 1)[0]
            if name in seen:
                raise ConfigError(f"--{name} given more than once (give several values after one flag: --{name} A B)")
            seen.add(name)


def _set_defaults(parser: argparse.ArgumentParser, values: Mapping[str, Any], source: str) -> None:
    """Config values become defaults; a required field the config sets is no longer required (TrlParser)."""
    seen: set[str] = set()
    for action in parser._actions:
        if action.dest not in values or action.dest in seen:  # the second is a bool's --no_X complement
            continue
        seen.add(action.dest)
        value = values[action.dest]
        if action.nargs == "+" and value is not None and not isinstance(value, list):
            value = [value]
        if action.choices is not None and value is not None:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in action.choices]
            if bad:
                raise ConfigError(f"{action.dest} must be one of {list(action.choices)}, got {bad[0]!r} (in {source})")
        action.default = value
        action.required = False


def _split_extra(tokens: Sequence[str]) -> dict[str, Any]:
    """``['--max_steps', '20', '--bf16']`` -> ``{'max_steps': '20', 'bf16': True}`` (values stay strings)."""
    out: dict[str, Any] = {}
    key = None
    for token in tokens:
        if token.startswith("--"):
            key, sep, value = token[2:].partition("=")
            out[key] = value if sep else True
        elif key is None:
            raise ConfigError(f"unexpected argument {token!r} (every option is a --flag)")
        else:
            prev = out[key]
            out[key] = token if prev is True else ([*prev, token] if isinstance(prev, list) else [prev, token])
    return out


def to_argv(values: Mapping[str, Any]) -> list[str]:
    """Inverse of the pass-through split: ``{'max_steps': 20}`` -> ``['--max_steps', '20']``."""
    import json

    argv: list[str] = []
    for key, value in values.items():
        argv.append(f"--{key}")
        if isinstance(value, list):
            argv += [str(v) for v in value]
        elif isinstance(value, dict):
            argv.append(json.dumps(value))
        elif value is None:  # YAML null: "" is "none" for the optional string fields (eval_split: '')
            argv.append("")
        else:
            argv.append(str(value).lower() if isinstance(value, bool) else str(value))
    return argv


def parse(
    classes: Sequence[type],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    description: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    passthrough: Collection[str] = (),
) -> tuple[Any, ...]:
    """Parse ``[--config file.yaml] [--field value ...]`` into one instance per dataclass.

    ``defaults`` replace the dataclass defaults (below the config file). ``passthrough`` names keys
    another parser will handle (``compare`` and ``quickstart`` hand training flags on): they are
    accepted in the YAML and on the command line and come back, unparsed, as a final dict.
    Raises :class:`ConfigError` for anything it cannot accept.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_duplicates(argv)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    pre.add_argument("--config", default=None)
    try:
        known_args, _ = pre.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{exc} (see `{prog} --help`)") from exc
    parser = ArgumentParser(tuple(classes), prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--config", default=None, help="YAML file of argument: value defaults (flags override it)")
    own = field_names(classes)
    if defaults:
        _set_defaults(parser, defaults, "the command's defaults")
    extra: dict[str, Any] = {}
    if known_args.config:
        values = load_config(known_args.config, [*own, *passthrough], prog)
        extra = {k: v for k, v in values.items() if k not in own}
        _set_defaults(parser, values, known_args.config)
    # Unknown flags first: a typo should be named even when a required argument is missing too.
    flags = [t.split("=", 1)[0] for t in argv if t.startswith("--") and len(t) > 2]
    bad = [f for f in flags if f not in parser._option_string_actions and f[2:] not in passthrough]
    if bad:
        raise unknown_error([f[2:] for f in bad], "command-line argument(s)", [*own, *passthrough], prog, flag=True)
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid arguments: {exc}") from exc
    instances = tuple(parsed[: len(classes)])
    flags = [r[2:].split("=", 1)[0] for r in remaining if r.startswith("--")]
    bad = [f for f in flags if f not in passthrough]
    if bad or (remaining and not passthrough):
        raise unknown_error(bad or remaining, "command-line argument(s)", [*own, *passthrough], prog, flag=True)
    if passthrough:
        return (*instances, {**extra, **_split_extra(remaining)})
    return instances


def parse_command_line(classes: Sequence[type], argv: Sequence[str] | None = None, *, prog: str, **kwargs: Any) -> tuple:
    """:func:`parse` for a command's ``main``: a bad argument ends the program with the message, no traceback."""
    try:
        return parse(classes, argv, prog=prog, **kwargs)
    except ConfigError as exc:
        sys.exit(f"{prog}: error: {exc}")


def split_subcommand(argv: Sequence[str] | None, choices: Mapping[str, str], prog: str) -> tuple[str, list[str]]:
    """``publish model --repo_id X`` -> ``('model', ['--repo_id', 'X'])``; no or an unknown name ends with a list."""
    argv = list(sys.argv[1:] if argv is None else argv)
    listing = "\n".join(f"  {name:<12} {help_}" for name, help_ in choices.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(choices)}}} [--config FILE.yaml] [--field value ...]\n\n{listing}")
        sys.exit(0 if argv else 2)
    if argv[0] not in choices:
        close = difflib.get_close_matches(argv[0], list(choices), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        sys.exit(f"{prog}: error: unknown sub-command '{argv[0]}'{hint}; choose from:\n{listing}")
    return argv[0], argv[1:]


def plain(value: Any) -> Any:
    """Make a value YAML-safe (enums -> values, tuples -> lists, paths and objects -> str)."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def as_config(*parts: Any) -> dict[str, Any]:
    """Dataclass instances and mappings as one flat mapping, loadable again with ``--config`` (no tokens)."""
    out: dict[str, Any] = {}
    for part in parts:
        if dataclasses.is_dataclass(part) and not isinstance(part, type):
            part = {f.name: getattr(part, f.name) for f in dataclasses.fields(part) if f.init}
        out.update({k: plain(v) for k, v in part.items() if not k.endswith("_token")})
    return out


def save_args(path: str | Path, *parts: Any, command: str) -> Path:
    """Write the resolved arguments (``args.yaml``) so the run can be repeated with ``--config``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(as_config(*parts), sort_keys=False)
    path.write_text(f"# resolved arguments of this run; repeat it with: {command} --config {path.name}\n{text}")
    return path


def args_file_for(output_file: str | Path) -> Path:
    """Where a one-file output's arguments go: ``preds.csv`` -> ``preds.csv.args.yaml`` beside it."""
    return Path(f"{output_file}.args.yaml")
