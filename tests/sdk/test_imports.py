"""The SDK's modules import each other in one direction only: no cycle, not even one held
together by an import inside a function."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import perfmon
from tests.sdk.helpers import ROOT, run_python

CORE = ROOT / "perfmon"


def _imported_modules(path: Path) -> set[str]:
    """Every perfmon module ``path`` imports, wherever the import statement is."""
    modules = _core_modules()
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                # ``from perfmon import _wire`` imports the module perfmon._wire
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found & set(modules)


def _core_modules() -> dict[str, Path]:
    modules = {"perfmon": CORE / "__init__.py"}
    modules.update({f"perfmon.{path.stem}": path for path in CORE.glob("_*.py")
                    if path.name != "__init__.py"})
    return modules


def _graph() -> dict[str, set[str]]:
    modules = _core_modules()
    return {name: _imported_modules(path) - {name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_core_modules_import_each_other_without_a_cycle():
    graph = _graph()
    assert graph["perfmon._session"] >= {"perfmon._summary", "perfmon._wire"}  # graph is real
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_package_imports_the_package():
    # Private modules import their siblings directly, never the package's public surface,
    # which is what would make the order of imports matter.
    graph = _graph()
    assert [name for name, targets in graph.items() if "perfmon" in targets] == []


def test_every_sdk_module_imports_first_in_a_fresh_interpreter():
    names = sorted(info.name for info in pkgutil.walk_packages(perfmon.__path__, "perfmon.")
                   if ".integrations" not in info.name)
    assert "perfmon._wire" in names and "perfmon.demo" in names
    for name in names:  # each one the first perfmon module its interpreter imports
        result = run_python(f"import {name}")
        assert result.returncode == 0, f"{name}: {result.stderr}"
