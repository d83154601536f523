"""The benchmark scripts import one another without cycles (a cycle made running one of
them depend on the other's import order); shared code lives in a module of its own,
such as benchmarks/claims_data.py."""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_imports() -> dict[str, set[str]]:
    """Each benchmark module and the benchmark modules it imports (anywhere in it)."""
    names = {path.stem for path in BENCHMARKS.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(BENCHMARKS.glob("*.py")):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
        graph[path.stem] = (imported & names) - {path.stem}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        for other in sorted(graph.get(name, ())):
            if other == path[0]:
                found.append([*path, other])
            elif other not in path and other > path[0]:  # each cycle once, from its least name
                visit(other, [*path, other])

    for name in sorted(graph):
        visit(name, [name])
    return found


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_benchmark_import_cycle() -> None:
    graph = benchmark_imports()
    assert cycles(graph) == []
    assert "claims_data" in graph["matching_speed"] and "claims_data" in graph["quality_claims"]
