"""One argument system for every command (hf_minerals/cli_args.py), checked over the whole command table.

For every ``hf-minerals`` command and sub-command: ``--help`` shows ``--config`` and only underscore
flags; an unknown key in the YAML or on the command line stops with a "did you mean" hint; and the
arguments the command parses, written with ``save_args``, load back through ``--config`` unchanged.
The commands are stopped right after parsing (a spy on ``cli_args.parse``), so nothing heavy runs;
the real runs that write ``args.yaml`` are in each command's own tests.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from hf_minerals import cli_args
from hf_minerals.benchmarks.common import BENCHMARKS
from hf_minerals.cli import COMMANDS
from hf_minerals.cli import main as cli_main
from hf_minerals.hub import SUBCOMMANDS as PUBLISH_KINDS

SUB = {"publish": list(PUBLISH_KINDS), "benchmark": list(BENCHMARKS)}
INVOCATIONS = [[name, *([sub] if sub else [])] for name in sorted(COMMANDS) for sub in SUB.get(name, [None])]
IDS = [" ".join(inv) for inv in INVOCATIONS]


def test_every_command_is_covered():
    assert {inv[0] for inv in INVOCATIONS} == set(COMMANDS)


def _help(inv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli_main([*inv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _a_flag(help_text: str) -> str:
    """A real option of the command, preferring one with an underscore (to test the dashed spelling)."""
    flags = [f for f in re.findall(r"--(\w+)", help_text) if f not in ("help", "config")]
    return next((f for f in flags if "_" in f), flags[0])


@pytest.mark.parametrize("inv", INVOCATIONS, ids=IDS)
def test_help_lists_config_and_one_spelling(inv, capsys):
    text = _help(inv, capsys)
    assert "--config" in text
    assert not re.findall(r"--[a-z0-9]+-[a-z0-9-]+", text), "dashed flags in --help"


@pytest.mark.parametrize("inv", INVOCATIONS, ids=IDS)
def test_unknown_keys_stop_with_a_hint(inv, tmp_path, capsys):
    flag = _a_flag(_help(inv, capsys))
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"{flag}x: 1\n")
    with pytest.raises(SystemExit) as exc:  # in the YAML
        cli_main([*inv, "--config", str(bad)])
    assert f"did you mean {flag}?" in str(exc.value.code) and "bad.yaml" in str(exc.value.code)
    with pytest.raises(SystemExit) as exc:  # on the command line
        cli_main([*inv, f"--{flag}x", "1"])
    assert f"did you mean --{flag}?" in str(exc.value.code)
    if "_" in flag:  # the dashed spelling is not a second way to say it
        with pytest.raises(SystemExit) as exc:
            cli_main([*inv, "--" + flag.replace("_", "-"), "1"])
        assert f"did you mean --{flag}?" in str(exc.value.code)


class _Parsed(BaseException):
    """Raised by the spy; a BaseException so ``cli.guarded`` (which turns failures into one line) lets it through."""


def _required_argv(classes) -> list[str]:
    """A dummy value for every required field (all of them strings or lists of strings)."""
    argv = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                argv += [f"--{f.name}", "x"]
    return argv


@pytest.mark.parametrize("inv", INVOCATIONS, ids=IDS)
def test_resolved_args_are_a_valid_config(inv, tmp_path, monkeypatch):
    real_parse = cli_args.parse
    seen = {}

    def spy(classes, argv=None, **kwargs):
        seen.update(classes=tuple(classes), kwargs=kwargs)
        raise _Parsed

    monkeypatch.setattr(cli_args, "parse", spy)
    with pytest.raises(_Parsed):
        cli_main(list(inv))
    monkeypatch.setattr(cli_args, "parse", real_parse)
    classes, kwargs = seen["classes"], seen["kwargs"]
    argv = _required_argv(classes)
    if any(c.__name__ == "TrainingArguments" for c in classes):  # train keeps only non-default TrainingArguments
        from hf_minerals.training.config import save_args

        first = cli_args.parse(classes, [*argv, "--output_dir", str(tmp_path / "o"), "--max_steps", "3"], **kwargs)
        again = cli_args.parse(classes, ["--config", str(save_args(tmp_path / "args.yaml", *first))], **kwargs)
        assert again[:2] == first[:2] and again[2].to_dict() == first[2].to_dict() and again[2].max_steps == 3
        return
    if kwargs.get("passthrough"):
        assert "max_steps" in kwargs["passthrough"]
        argv += ["--max_steps", "3"]  # a training flag handed on to every training run
    first = cli_args.parse(classes, argv, **kwargs)
    saved = cli_args.save_args(tmp_path / "args.yaml", *first, command=" ".join(["hf-minerals", *inv]))
    text = saved.read_text()
    assert text.startswith(f"# resolved arguments of this run; repeat it with: hf-minerals {' '.join(inv)} --config")
    assert yaml.safe_load(text)  # a flat mapping
    again = cli_args.parse(classes, ["--config", str(saved)], **kwargs)
    assert again == first
    if kwargs.get("passthrough"):
        assert again[-1] == {"max_steps": "3"}


def test_config_sets_required_fields_and_flags_win(tmp_path):
    from hf_minerals.predict import PredictArguments

    cfg = tmp_path / "p.yaml"
    cfg.write_text("images: one.png\nmodel: m\ntop_k: 5\n")
    (args,) = cli_args.parse([PredictArguments], ["--config", str(cfg), "--top_k", "2"], prog="p")
    assert args.images == ["one.png"] and args.model == "m" and args.top_k == 2
    with pytest.raises(cli_args.ConfigError, match="required"):
        cli_args.parse([PredictArguments], ["--model", "m"], prog="p")
    cfg.write_text("images: [a.png]\nmodel: m\ntopk: 1\n")
    with pytest.raises(cli_args.ConfigError, match="did you mean top_k"):
        cli_args.parse([PredictArguments], ["--config", str(cfg)], prog="p")


def test_choices_are_checked_in_the_yaml_too(tmp_path):
    from hf_minerals.explain.command import ExplainArguments

    cfg = tmp_path / "e.yaml"
    cfg.write_text("model: [m]\nimages: [a.png]\nbaseline: white\n")
    with pytest.raises(cli_args.ConfigError, match="baseline must be one of"):
        cli_args.parse([ExplainArguments], ["--config", str(cfg)], prog="e")


def test_unknown_subcommand_has_a_hint():
    with pytest.raises(SystemExit, match="did you mean model"):
        cli_main(["publish", "modle"])


def test_passthrough_flags_survive_the_round_trip():
    extra = cli_args._split_extra(["--eval_split=", "--max_steps", "3", "--bf16", "--report_to", "a", "b"])
    assert extra == {"eval_split": "", "max_steps": "3", "bf16": True, "report_to": ["a", "b"]}
    assert cli_args._split_extra(cli_args.to_argv(extra)) == {**extra, "bf16": "true"}
