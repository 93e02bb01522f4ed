"""The figures table of docs/benchmarks.md, generated from the committed JSON files in docs/benchmarks/.

``python scripts/benchmark.py table [--json-dir docs/benchmarks] [--doc docs/benchmarks.md]`` rewrites the
part of the doc between ``<!-- figures:start -->`` and ``<!-- figures:end -->``: one row per headline
figure of each JSON file, with the run's date, machine load and CPU, so no number is typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def render(json_dir: Path) -> str:
    """Markdown table of every ``*.json`` headline in ``json_dir`` (sorted by file name)."""
    lines = ["| file | figure | value |", "|---|---|---|"]
    notes = []
    for path in sorted(json_dir.glob("*.json")):
        rec = json.loads(path.read_text())
        for key, value in (rec.get("headline") or {}).items():
            lines.append(f"| {path.name} | {key.replace('_', ' ')} | {_fmt(value)} |")
        m = rec.get("machine", {})
        load = rec.get("load_average") or {}
        load_text = (f"1-min load {load['start_1_5_15min'][0]} at start, {load['end_1_5_15min'][0]} at end"
                     if load else "load not recorded")
        notes.append(f"- `{path.name}`: `{rec.get('command', 'scripts/benchmark.py ' + rec.get('benchmark', '?'))}`, "
                     f"{m.get('cpu', '?')} ({m.get('logical_cpus', '?')} CPUs, torch threads {m.get('torch_threads', '?')}), "
                     f"{load_text}, wall {rec.get('wall_seconds', '?')} s")
    return "\n".join(lines + [""] + notes)


def update_doc(doc: Path, json_dir: Path) -> str:
    """Replace the marked block of ``doc`` with :func:`render`; returns the table."""
    table = render(json_dir)
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{doc} has no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return table
