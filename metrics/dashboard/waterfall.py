"""Which operations of a session the waterfall draws, and in what order.

A session can hold 50,000 operations; a chart of all of them is unreadable and slow to
send. The waterfall draws every operation of a small session, and of a large one the first
operations by start, the slowest, the failed ones and the ancestors of all of those, so the
nesting stays visible. Each part is one indexed, limited query.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q, Sum

from metrics.dashboard.charts import WaterfallBar, hover_detail
from metrics.models import Operation, Session

DRAW_ALL_UP_TO = 300
FIRST = 150
SLOWEST = 50
FAILED = 25
MAX_DEPTH = 12  # ancestor look-ups; deeper trees are drawn from the deepest parent found
GROUP_AT = 5  # in a large session, this many same-named siblings are drawn as one group
MAX_GROUPS = 100
GROUP_DETAILS = 500  # operations listed when a group is opened

FIELDS = ("client_id", "parent_client_id", "name", "started_at", "duration_s", "success",
          "error", "metadata")


@dataclass(frozen=True)
class Waterfall:
    bars: list[WaterfallBar]
    total: int  # operations in the session
    elapsed_s: float
    grouped: int = 0  # operations drawn inside groups
    groups: list[tuple[str, str]] = field(default_factory=list)  # (parent id, name)

    @property
    def partial(self) -> bool:
        return len(self.bars) < self.total


def session_waterfall(session: Session, *, elapsed_s: float) -> Waterfall:
    ops = Operation.objects.filter(session=session)
    total = session.operations_count
    if total <= DRAW_ALL_UP_TO:
        rows = {r["client_id"]: r for r in ops.order_by("started_at", "pk").values(*FIELDS)}
        groups = []
    else:
        groups = _sibling_groups(ops)
        grouped = {(g["parent_client_id"], g["name"]) for g in groups}
        rows = {r["client_id"]: r for r in ops.order_by("started_at", "pk")[:FIRST]
                .values(*FIELDS) if (r["parent_client_id"], r["name"]) not in grouped}
        # The slowest and the failed stay in sight beside their group.
        for part in (
            ops.filter(duration_s__isnull=False).order_by("-duration_s", "pk")[:SLOWEST],
            ops.filter(success=False).order_by("started_at", "pk")[:FAILED],
        ):
            rows.update((r["client_id"], r) for r in part.values(*FIELDS))
        rows.update((row["client_id"], row) for row in map(_group_row, groups))
        _add_ancestors(ops, rows)
    bars = [_bar(row, depth, session) for row, depth in _tree_order(rows)]
    return Waterfall(bars=bars, total=max(total, len(bars)), elapsed_s=elapsed_s,
                     grouped=sum(g["n"] for g in groups),
                     groups=[(g["parent_client_id"] or "", g["name"]) for g in groups])


def _sibling_groups(ops) -> list[dict]:
    """Same-named siblings (25 ``call_llm`` under one scene): one aggregate row per group."""
    return list(
        ops.values("parent_client_id", "name")
        .annotate(n=Count("pk"), first=Min("started_at"), last=Max("ended_at"),
                  total_s=Sum("duration_s"), failed=Count("pk", filter=Q(success=False)),
                  running=Count("pk", filter=Q(duration_s__isnull=True)))
        .filter(n__gte=GROUP_AT).order_by("-n", "name")[:MAX_GROUPS]
    )


def _group_row(group: dict) -> dict:
    """A group as a row of the tree: from its first start to its last end."""
    span = (group["last"] - group["first"]).total_seconds() if group["last"] else None
    mean = group["total_s"] / (group["n"] - group["running"]) if group["total_s"] else None
    summary = (f"{group['n']} operations, {group['total_s'] or 0:,.3f} s in all"
               + (f", {mean:,.3f} s each on average" if mean else "")
               + (f", {group['failed']} failed" if group["failed"] else "")
               + "; click to list them")
    return {"client_id": f"group\u0000{group['parent_client_id']}\u0000{group['name']}",
            "parent_client_id": group["parent_client_id"],
            "name": f"{group['name']} \u00d7{group['n']}", "started_at": group["first"],
            "duration_s": None if group["running"] else span,
            "success": not group["failed"], "error": None, "metadata": None,
            "summary": summary, "group": (group["parent_client_id"] or "", group["name"])}


def group_operations(session: Session, *, parent: str, name: str) -> list[dict]:
    """The operations of one group, for the page to show when it is opened."""
    ops = Operation.objects.filter(session=session, name=name,
                                   parent_client_id=parent or None)
    return [
        {**row, "start_s": (row["started_at"] - session.started_at).total_seconds()}
        for row in ops.order_by("started_at", "pk")
        .values("client_id", "started_at", "duration_s", "success", "error")[:GROUP_DETAILS]
    ]


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
        detail=row.get("summary") or hover_detail(row["metadata"], row["error"]),
        group=row.get("group"),
    )
