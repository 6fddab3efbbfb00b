"""Where the time went: self time by operation name, and the slowest operations.

An operation's *self time* is its own interval minus the wall time covered by its children.
Children can overlap (``asyncio.gather``, thread pools), so they are merged into a union first:
ten parallel one-second children inside a 1.2 s parent leave the parent 0.2 s of self time,
not minus 8.8 s. Self time is then grouped by name and again merged into a union, so a name
whose calls ran in parallel is never charged more than the wall time it covered. A name is a
bottleneck when that covered time exceeds the threshold share of the session's wall time
(``ended_at - started_at``; for a running session, up to its latest finished operation).
The server computes the same rule on its own; ``tests/bottleneck_cases.py`` holds the cases
both sides must agree on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from perfmon._core import OperationMetrics

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class NameTime:
    """Self time of every operation with one name."""

    name: str
    calls: int
    self_s: float  # wall time covered by the self time of these calls
    share: float  # self_s / session wall time, 0..1

    def as_dict(self) -> dict[str, float | int | str]:
        return {"name": self.name, "calls": self.calls, "self_s": self.self_s, "share": self.share}


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(start: int, end: int, holes: list[Interval]) -> list[Interval]:
    """``[start, end]`` minus sorted, disjoint ``holes``."""
    pieces: list[Interval] = []
    cursor = start
    for hole_start, hole_end in holes:
        hole_start, hole_end = max(hole_start, start), min(hole_end, end)
        if hole_end <= hole_start:
            continue
        if hole_start > cursor:
            pieces.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def wall_ns(start_ns: int, end_ns: int | None, ops: Sequence[OperationMetrics]) -> int:
    """The session's wall time: ``end - start``; for a running session, up to the end of its
    latest finished operation (0 when none has finished)."""
    if end_ns is not None:
        return end_ns - start_ns
    ends = [op.end_ns for op in ops if op.end_ns is not None]
    return max(ends) - start_ns if ends else 0


def self_time_by_name(ops: Sequence[OperationMetrics], wall_ns: int) -> list[NameTime]:
    """Self time per operation name, largest first. Running operations are ignored."""
    finished = [op for op in ops if op.end_ns is not None]
    children: dict[int, list[Interval]] = defaultdict(list)
    for op in finished:
        if isinstance(op._parent, OperationMetrics):
            children[id(op._parent)].append((op.start_ns, op.end_ns))  # type: ignore[arg-type]

    pieces: dict[str, list[Interval]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    for op in finished:
        start, end = op.start_ns, op.end_ns
        assert end is not None
        kids = children.get(id(op))
        own = _subtract(start, end, _union(kids)) if kids else [(start, end)]
        pieces[op.operation_name].extend(own)
        calls[op.operation_name] += 1

    wall = max(wall_ns, 1)
    result = []
    for name, intervals in pieces.items():
        covered = sum(end - start for start, end in _union(intervals))
        result.append(NameTime(name, calls[name], covered / 1e9, covered / wall))
    result.sort(key=lambda item: item.self_s, reverse=True)
    return result


def slowest(ops: Sequence[OperationMetrics], limit: int = 5) -> list[OperationMetrics]:
    """The ``limit`` longest finished operations, longest first."""
    finished = [op for op in ops if op.end_ns is not None]
    finished.sort(key=lambda op: op.end_ns - op.start_ns, reverse=True)  # type: ignore[operator]
    return finished[:limit]
