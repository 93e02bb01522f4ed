"""The package's import graph points downward: library code never imports the benchmarks (a leaf that
only ``cli.py`` names, by string) nor the Space app, loads no file by path, and has no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hf_minerals"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _imports(path: Path, top_level_only: bool) -> list[str]:
    """Modules ``path`` imports (relative imports resolved; ``from pkg import mod`` gives pkg.mod)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}")]
            out += subs or [module]
    return out


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_walk_sees_the_package():
    names = {_module_name(p) for p in _files()}
    assert {"hf_minerals.service", "hf_minerals.comparison", "hf_minerals.benchmarks.space",
            "hf_minerals.explain.methods", "hf_minerals.runtime"} <= names


def test_no_upward_imports():
    bad = []
    for path in _files():
        src = _module_name(path)
        in_benchmarks = src.startswith("hf_minerals.benchmarks")
        for target in _imports(path, top_level_only=False):
            if target.startswith("hf_minerals.benchmarks") and not in_benchmarks:
                bad.append(f"{src} imports {target} (benchmarks are a leaf)")
            if target.split(".")[0] in ("app", "space", "gradio"):
                bad.append(f"{src} imports {target} (the Space is built on the package, not the other way)")
        if "spec_from_file_location" in path.read_text():
            bad.append(f"{src} loads a module by file path")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    """Module-level imports only (a lazy import inside a function cannot deadlock at import time)."""
    graph = {_module_name(p): {t for t in _imports(p, top_level_only=True) if t.startswith("hf_minerals.")}
             for p in _files()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt in graph and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
