"""Arithmetic on time intervals: half-open (start, end) pairs of floats in seconds."""

from collections.abc import Iterable

Interval = tuple[float, float]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals into disjoint ones, in start order."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def length(intervals: Iterable[Interval]) -> float:
    """Wall time covered by ``intervals``, counting overlaps once."""
    return sum(end - start for start, end in union(intervals))


def subtract(base: Interval, holes: Iterable[Interval]) -> list[Interval]:
    """The parts of ``base`` not covered by any of ``holes``."""
    start, end = base
    remaining: list[Interval] = []
    cursor = start
    for hole_start, hole_end in union(holes):
        if hole_end <= cursor:
            continue
        if hole_start >= end:
            break
        if hole_start > cursor:
            remaining.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < end:
        remaining.append((cursor, end))
    return remaining
