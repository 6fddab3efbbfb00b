"""How much a session ran in parallel: its parallel speedup.

The speedup of an operation name is the time its occurrences took added up over the wall
time they covered together (overlaps counted once): 3.0 means three at a time on average,
1.0 one after the other. The session's speedup is the same over its leaf operations (those
that called no other), against the session's wall time.
"""

from django.db.models import F

from metrics.analysis.intervals import length
from metrics.models import Operation, Session

MAX_OPERATIONS = 20_000  # beyond this the page leaves the speedup out (None)


def parallel_speedup(session: Session) -> dict | None:
    ops = Operation.objects.filter(session=session, duration_s__isnull=False)
    if session.operations_count > MAX_OPERATIONS:
        return None
    rows = list(ops.values_list("client_id", "parent_client_id", "name", "started_at",
                                F("duration_s")))
    if not rows:
        return None
    parents = {parent for _, parent, _, _, _ in rows if parent}
    start = session.started_at
    by_name: dict[str, list[tuple[float, float]]] = {}
    leaves = []
    for client_id, _, name, started_at, duration in rows:
        begin = (started_at - start).total_seconds()
        by_name.setdefault(name, []).append((begin, begin + duration))
        if client_id not in parents:
            leaves.append((begin, begin + duration))
    wall = session.duration_s or length(leaves)
    names = {name: _ratio(spans) for name, spans in by_name.items() if len(spans) > 1}
    return {
        "session": sum(b - a for a, b in leaves) / wall if wall else None,
        "by_name": sorted(((n, r) for n, r in names.items() if r is not None),
                          key=lambda item: -item[1]),
    }


def _ratio(spans: list[tuple[float, float]]) -> float | None:
    covered = length(spans)
    return sum(b - a for a, b in spans) / covered if covered else None
