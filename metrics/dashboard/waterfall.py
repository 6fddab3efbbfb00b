"""Which operations of a session the waterfall draws, and in what order.

A session can hold 50,000 operations; a chart of all of them is unreadable and slow to
send. The waterfall draws every operation of a small session, and of a large one the first
operations by start, the slowest, the failed ones and the ancestors of all of those, so the
nesting stays visible. Each part is one indexed, limited query.
"""

from collections import defaultdict
from dataclasses import dataclass

from metrics.dashboard.charts import WaterfallBar, hover_detail
from metrics.models import Operation, Session

DRAW_ALL_UP_TO = 300
FIRST = 150
SLOWEST = 50
FAILED = 25
MAX_DEPTH = 12  # ancestor look-ups; deeper trees are drawn from the deepest parent found

FIELDS = ("client_id", "parent_client_id", "name", "started_at", "duration_s", "success",
          "error", "metadata")


@dataclass(frozen=True)
class Waterfall:
    bars: list[WaterfallBar]
    total: int  # operations in the session
    elapsed_s: float

    @property
    def partial(self) -> bool:
        return len(self.bars) < self.total


def session_waterfall(session: Session, *, elapsed_s: float) -> Waterfall:
    ops = Operation.objects.filter(session=session)
    total = session.operations_count
    if total <= DRAW_ALL_UP_TO:
        rows = {r["client_id"]: r for r in ops.order_by("started_at", "pk").values(*FIELDS)}
    else:
        rows = {}
        for part in (
            ops.order_by("started_at", "pk")[:FIRST],
            ops.filter(duration_s__isnull=False).order_by("-duration_s", "pk")[:SLOWEST],
            ops.filter(success=False).order_by("started_at", "pk")[:FAILED],
        ):
            rows.update((r["client_id"], r) for r in part.values(*FIELDS))
        _add_ancestors(ops, rows)
    bars = [_bar(row, depth, session) for row, depth in _tree_order(rows)]
    return Waterfall(bars=bars, total=max(total, len(bars)), elapsed_s=elapsed_s)


def _add_ancestors(ops, rows: dict[str, dict]) -> None:
    for _ in range(MAX_DEPTH):
        missing = {r["parent_client_id"] for r in rows.values()
                   if r["parent_client_id"] and r["parent_client_id"] not in rows}
        if not missing:
            return
        found = list(ops.filter(client_id__in=missing).values(*FIELDS))
        if not found:
            return
        rows.update((r["client_id"], r) for r in found)


def _tree_order(rows: dict[str, dict]) -> list[tuple[dict, int]]:
    """Depth-first, children in start order: each operation right under its parent."""
    children: dict[str | None, list[dict]] = defaultdict(list)
    for row in rows.values():
        parent = row["parent_client_id"] if row["parent_client_id"] in rows else None
        children[parent].append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r["started_at"], r["client_id"]))
    ordered: list[tuple[dict, int]] = []
    stack = [(row, 0) for row in reversed(children[None])]
    while stack:
        row, depth = stack.pop()
        ordered.append((row, depth))
        stack.extend((child, depth + 1) for child in reversed(children[row["client_id"]]))
    return ordered


def _bar(row: dict, depth: int, session: Session) -> WaterfallBar:
    if row["duration_s"] is None:
        status = "running"
    elif row["success"] is False:
        status = "failed"
    else:
        status = "ok"
    return WaterfallBar(
        label=row["name"],
        depth=depth,
        start_s=(row["started_at"] - session.started_at).total_seconds(),
        duration_s=row["duration_s"],
        status=status,
        detail=hover_detail(row["metadata"], row["error"]),
    )
