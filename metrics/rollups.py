"""Cost and operation rollups by day, episode, workflow and model or operation name.

Each analyzed session owns lines (CostLine per day and model, OperationStat per operation
name) and the rollups are the sums of those lines under each session's rollup key.
Analysis keeps them up to date incrementally: it subtracts the session's old lines under
its old key and adds the new ones under its current key, in the same transaction that
replaces the lines. ``rebuild_all`` recomputes lines and rollups from the raw rows and
must give the same table.

Analysis holds a shared lock and the rebuild an exclusive one (PostgreSQL advisory locks;
SQLite's database lock does the same), so a rebuild never interleaves with an analysis.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from metrics.models import (
    ApiCall,
    CostLine,
    CostRollup,
    Episode,
    OperationRollup,
    OperationStat,
    Session,
)
from metrics.operation_stats import NameStat

ROLLUP_LOCK = 7_404_417  # any constant shared by the two sides
COST_SUMS = (
    "calls", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "cache_write_tokens", "total_tokens", "cost_usd", "unpriced_calls",
)
OP_SUMS = ("occurrences", "failures", "total_duration_s", "self_time_s")
COST_KEY = ("project_id", "day", "episode", "workflow", "provider", "model")
OP_KEY = ("project_id", "day", "episode", "workflow", "name")


def hold_analysis_lock() -> None:
    """Taken by analysis inside its transaction: many analyses at once, no rebuild."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ROLLUP_LOCK])


def _hold_rebuild_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])


# --- per-session lines and incremental maintenance ------------------------------------


def cost_lines_query(calls, *, per_session: bool = False):
    group = ("session_id", "day", "provider", "model") if per_session else (
        "day", "provider", "model")
    return (
        calls.annotate(day=TruncDate("at"))
        .values(*group)
        .annotate(
            calls=Count("pk"),
            errors=Count("pk", filter=Q(error=True)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            total_tokens=Sum("total_tokens"),
            cost_usd=Coalesce(Sum("cost_usd"), Value(Decimal(0))),
            unpriced_calls=Count("pk", filter=Q(cost_source=ApiCall.CostSource.UNPRICED)),
        )
        .order_by()
    )


def replace_session_figures(session: Session, stats: Sequence[NameStat]) -> None:
    """Replace the session's lines and move its share of the rollups to match them.

    The caller holds the analysis lock and the session's row lock.
    """
    old_key = _session_key(session) if session.rollup_day else None
    old_cost = list(CostLine.objects.filter(session=session).values("day", "provider",
                                                                     "model", *COST_SUMS))
    old_ops = list(OperationStat.objects.filter(session=session).values("name", *OP_SUMS))

    new_cost = list(cost_lines_query(ApiCall.objects.filter(session=session)))
    CostLine.objects.filter(session=session).delete()
    CostLine.objects.bulk_create(CostLine(session=session, **line) for line in new_cost)
    OperationStat.objects.filter(session=session).delete()
    OperationStat.objects.bulk_create(
        OperationStat(session=session, **_stat_fields(stat)) for stat in stats
    )

    session.rollup_episode = session.episode.code if session.episode_id else ""
    session.rollup_workflow = session.workflow
    session.rollup_day = session.started_at.date()
    session.save(update_fields=["rollup_episode", "rollup_workflow", "rollup_day"])
    new_key = _session_key(session)

    cost_delta: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    op_delta: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    if old_key is not None:
        _accumulate(cost_delta, old_cost, old_key, ("provider", "model"), COST_SUMS, sign=-1)
        _accumulate(op_delta, old_ops, old_key, ("name",), OP_SUMS, sign=-1)
    _accumulate(cost_delta, new_cost, new_key, ("provider", "model"), COST_SUMS, sign=1)
    new_ops = [{"name": s.name, **{f: getattr(s, f) for f in OP_SUMS}} for s in stats]
    _accumulate(op_delta, new_ops, new_key, ("name",), OP_SUMS, sign=1)
    _apply(CostRollup, COST_KEY, COST_SUMS, cost_delta)
    _apply(OperationRollup, OP_KEY, OP_SUMS, op_delta)


def _session_key(session: Session) -> dict:
    return {
        "project_id": session.project_id,
        "episode": session.rollup_episode,
        "workflow": session.rollup_workflow,
        "day": session.rollup_day,
    }


def _stat_fields(stat: NameStat) -> dict:
    return {
        "name": stat.name, "occurrences": stat.occurrences, "failures": stat.failures,
        "total_duration_s": stat.total_duration_s, "self_time_s": stat.self_time_s,
        "share": stat.share, "is_bottleneck": stat.is_bottleneck,
        "cache_hits": stat.cache_hits, "cache_misses": stat.cache_misses,
    }


def _accumulate(deltas, lines: Iterable[dict], session_key: dict, line_key: tuple,
                sums: tuple, *, sign: int) -> None:
    for line in lines:
        day = line.get("day") or session_key["day"]
        key = (session_key["project_id"], day, session_key["episode"],
               session_key["workflow"], *(line[k] for k in line_key))
        entry = deltas[key]
        entry["sessions"] += sign
        for field in sums:
            entry[field] += sign * line[field]


def _apply(model, key_fields: tuple, sums: tuple, deltas: dict) -> None:
    """Add ``deltas`` to the rollup rows, creating rows as needed; drop emptied rows."""
    changed = {key: entry for key, entry in deltas.items() if any(entry.values())}
    if not changed:
        return
    table = model._meta.db_table
    value_fields = ("sessions", *sums)
    columns = ", ".join((*key_fields, *value_fields))
    placeholders = ", ".join(["%s"] * (len(key_fields) + len(value_fields)))
    increments = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in value_fields)
    # Sorted keys: concurrent analyses touch shared rows in one order, so never deadlock.
    rows = [(*key, *(changed[key][f] for f in value_fields)) for key in sorted(changed)]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(key_fields)}) DO UPDATE SET {increments}",
            rows,
        )
    model.objects.filter(sessions__lte=0).delete()


# --- rebuild from scratch -------------------------------------------------------------


@transaction.atomic
def rebuild_all() -> None:
    """Recompute every analyzed session's cost lines and all rollups from the raw rows."""
    _hold_rebuild_lock()
    analyzed = Session.objects.filter(analyzed_at__isnull=False)
    episode_code = Subquery(Episode.objects.filter(pk=OuterRef("episode_id")).values("code"))
    analyzed.update(
        rollup_episode=Coalesce(episode_code, Value("")),
        rollup_workflow=Coalesce("workflow", Value("")),
        rollup_day=TruncDate("started_at"),
    )

    CostLine.objects.all().delete()
    lines = cost_lines_query(
        ApiCall.objects.filter(session__analyzed_at__isnull=False), per_session=True
    )
    CostLine.objects.bulk_create((CostLine(**line) for line in lines), batch_size=5000)

    CostRollup.objects.all().delete()
    CostRollup.objects.bulk_create(
        (CostRollup(**row) for row in _grouped(CostLine.objects.all(), "session__",
                                                 ("provider", "model"), COST_SUMS)),
        batch_size=5000,
    )
    OperationRollup.objects.all().delete()
    OperationRollup.objects.bulk_create(
        (OperationRollup(**row) for row in _grouped(
            OperationStat.objects.filter(session__analyzed_at__isnull=False), "session__",
            ("name",), OP_SUMS, day_from_session=True)),
        batch_size=5000,
    )


def _grouped(lines, via: str, line_key: tuple, sums: tuple, *, day_from_session=False):
    day = f"{via}rollup_day" if day_from_session else "day"
    query = (
        lines.values(
            f"{via}project_id", day, f"{via}rollup_episode", f"{via}rollup_workflow", *line_key
        )
        .annotate(sessions=Count(f"{via}pk", distinct=True),
                  **{f"sum_{f}": Sum(f) for f in sums})
        .order_by()
    )
    for row in query:
        yield {
            "project_id": row[f"{via}project_id"],
            "day": row[day],
            "episode": row[f"{via}rollup_episode"],
            "workflow": row[f"{via}rollup_workflow"],
            **{k: row[k] for k in line_key},
            "sessions": row["sessions"],
            **{f: row[f"sum_{f}"] for f in sums},
        }
