"""Operation trees on the way in: a parent link that closes a loop is refused.

Self-parents are refused by the schema; a longer loop can span the payload and the
operations stored from earlier payloads of the same session, so it is looked for here,
under the session's row lock.
"""

from collections.abc import Callable, Sequence

from ingest.errors import PayloadRefused
from ingest.schemas import OperationIn

ParentLookup = Callable[[set[str]], dict[str, str | None]]


def refuse_cycles(operations: Sequence[OperationIn], stored_parents: ParentLookup | None) -> None:
    """Raise PayloadRefused at the first operation whose parent link closes a loop."""
    parents: dict[str, str | None] = {op.id: op.parent_id for op in operations}
    if stored_parents is not None:
        _add_stored_ancestors(parents, stored_parents)
    position = {op.id: index for index, op in enumerate(operations)}
    done: set[str] = set()
    for op in operations:
        loop = _loop_from(op.id, parents, done)
        on_payload = [node for node in loop if node in position]
        if on_payload:
            first = min(on_payload, key=position.__getitem__)
            raise PayloadRefused(
                ["operations", position[first], "parent_id"],
                "the parent links form a loop: " + " -> ".join([*loop, loop[0]]),
            )


def _add_stored_ancestors(parents: dict[str, str | None], stored_parents: ParentLookup) -> None:
    # One query per level of stored ancestors; each level only asks for ids not yet known.
    frontier = {p for p in parents.values() if p is not None and p not in parents}
    while frontier:
        found = stored_parents(frontier)
        for client_id in frontier:
            parents[client_id] = found.get(client_id)
        frontier = {p for p in found.values() if p is not None and p not in parents}


def _loop_from(start: str, parents: dict[str, str | None], done: set[str]) -> list[str]:
    """Follow parent links from ``start``; the loop met on the way, or [] if none."""
    path: list[str] = []
    on_path: dict[str, int] = {}
    node: str | None = start
    while node is not None and node not in done:
        if node in on_path:
            loop = path[on_path[node]:]
            done.update(path)
            return loop
        on_path[node] = len(path)
        path.append(node)
        node = parents.get(node)
    done.update(path)
    return []
