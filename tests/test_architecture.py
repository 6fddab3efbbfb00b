"""The rooms of the house and what each may import (docs/architecture.md).

Read from the source with ``ast``, so an import added inside a function counts too.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("perfmon", "perfmon_site", "ingest", "metrics")

# room -> rooms it must never import (a room is a package or a module prefix)
FORBIDDEN = {
    "perfmon": ("django", "metrics", "ingest", "perfmon_site", "celery", "pydantic"),
    "metrics": ("ingest", "perfmon_site"),
    "metrics.analysis": ("metrics.dashboard", "metrics.admin", "metrics.tasks", "metrics.alerts"),
    "metrics.alerts": ("metrics.dashboard", "metrics.admin", "metrics.tasks"),
    "metrics.dashboard": ("metrics.admin",),
    "metrics.admin": ("metrics.dashboard",),
    "ingest": ("metrics.dashboard", "metrics.admin", "perfmon_site"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


MODULES = source_modules()


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_room_imports_what_it_must_not(room):
    offences = sorted(
        f"{name} imports {target}"
        for name, path in MODULES.items() if within(name, room)
        for target in imports_of(path)
        if any(within(target, banned) for banned in FORBIDDEN[room])
    )
    assert offences == []


def test_no_import_cycle_among_the_projects_modules():
    graph = defaultdict(set)
    for name, path in MODULES.items():
        graph[name] = {target for target in imports_of(path) if target in MODULES} - {name}
    # A package's __init__ importing its own submodules is how a package registers them.
    for name in list(graph):
        graph[name] = {t for t in graph[name] if not within(t, name)}

    cycles = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
