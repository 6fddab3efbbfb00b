"""Cost and operation rollups: by day and by episode, each split by workflow and by model
or operation name (the daily cost rollup by release too).

Each analyzed session owns lines: CostLine per day and model (derived from its API calls)
and OperationStat per operation name (derived from its operations). The rollups are sums
of those lines under each session's rollup key (episode, workflow, release, day), recorded
on the session. Analysis keeps the rollups up to date incrementally: in the transaction
that replaces a session's lines it subtracts the old lines under the old key and adds the
new ones under the current key. ``rebuild_all`` recomputes every rollup from the lines and
must give the same tables; a session merged since its analysis gets new lines from the
sweep, which re-analyzes it.

Days are UTC days, whatever time zone the request or worker that runs the analysis has
active (a person's chosen zone is active while an editor's change reprices in-process).

Analysis holds a shared lock and the rebuild an exclusive one (PostgreSQL advisory locks;
SQLite's database lock does the same), so a rebuild never interleaves with an analysis.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

from django.db import connection, models, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from metrics.analysis.operation_stats import NameStat
from metrics.models import (
    ApiCall,
    CostLine,
    DailyCost,
    DailyOperation,
    Episode,
    EpisodeCost,
    EpisodeOperation,
    OperationStat,
    Session,
)

ROLLUP_LOCK = 7_404_417  # any constant shared by the two sides
COST_SUMS = (
    "calls", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "total_tokens", "cost_usd",
    "unpriced_calls",
)
OP_SUMS = ("occurrences", "failures", "total_duration_s", "self_time_s")


@dataclass(frozen=True)
class Rollup:
    model: type[models.Model]
    lines: str  # "cost" (CostLine) or "operations" (OperationStat)
    # rollup field -> where a line's value comes from, as an ORM path from the line
    key: dict[str, str]

    @property
    def sums(self) -> tuple[str, ...]:
        return COST_SUMS if self.lines == "cost" else OP_SUMS

    @property
    def key_fields(self) -> tuple[str, ...]:
        return ("project_id", *self.key)


ROLLUPS = (
    # The release too: the costs page filters by it, and at a season's size summing the
    # period's cost lines for one release grows with every session.
    Rollup(DailyCost, "cost", {"day": "day", "workflow": "session__rollup_workflow",
                               "release": "session__rollup_release",
                               "provider": "provider", "model": "model"}),
    Rollup(EpisodeCost, "cost", {"episode": "session__rollup_episode",
                                 "workflow": "session__rollup_workflow",
                                 "provider": "provider", "model": "model"}),
    Rollup(DailyOperation, "operations", {"day": "session__rollup_day",
                                          "workflow": "session__rollup_workflow",
                                          "name": "name"}),
    Rollup(EpisodeOperation, "operations", {"episode": "session__rollup_episode",
                                            "workflow": "session__rollup_workflow",
                                            "name": "name"}),
)


def hold_analysis_lock() -> None:
    """Taken by analysis inside its transaction: many analyses at once, no rebuild."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ROLLUP_LOCK])


def _hold_rebuild_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
            # Run deferred foreign-key checks now: TRUNCATE refuses a table with pending
            # ones (rows written earlier in an enclosing transaction).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# --- per-session lines and incremental maintenance ------------------------------------


def cost_lines_query(calls):
    return (
        calls.annotate(day=TruncDate("at", tzinfo=UTC))
        .values("day", "provider", "model")
        .annotate(
            calls=Count("pk"),
            errors=Count("pk", filter=Q(error=True)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            cache_write_1h_tokens=Sum("cache_write_1h_tokens"),
            total_tokens=Sum("total_tokens"),
            cost_usd=Coalesce(Sum("cost_usd"), Value(Decimal(0))),
            unpriced_calls=Count("pk", filter=Q(cost_source=ApiCall.CostSource.UNPRICED)),
        )
        .order_by()
    )


def operation_costs(session: Session) -> dict[str, Decimal]:
    """Cost of the session's calls by the name of the operation they were made in."""
    rows = (
        ApiCall.objects.filter(session=session, operation__isnull=False)
        .values("operation__name").annotate(cost=Sum("cost_usd")).order_by()
    )
    return {row["operation__name"]: row["cost"] or Decimal(0) for row in rows}


def replace_session_figures(session: Session, stats: Sequence[NameStat]) -> None:
    """Replace the session's lines and move its share of the rollups to match them.

    The caller holds the analysis lock and the session's row lock.
    """
    old_key = _session_key(session) if session.rollup_day else None
    old_lines = {
        "cost": list(CostLine.objects.filter(session=session).values(
            "day", "provider", "model", *COST_SUMS)),
        "operations": list(OperationStat.objects.filter(session=session).values(
            "name", *OP_SUMS)),
    }

    new_cost = list(cost_lines_query(ApiCall.objects.filter(session=session)))
    CostLine.objects.filter(session=session).delete()
    CostLine.objects.bulk_create(CostLine(session=session, **line) for line in new_cost)
    OperationStat.objects.filter(session=session).delete()
    costs = operation_costs(session)
    OperationStat.objects.bulk_create(
        OperationStat(session=session, cost_usd=costs.get(stat.name),
                      **_stat_fields(stat))
        for stat in stats
    )
    _set_rollup_key(session, unpriced_calls_count=sum(
        line["unpriced_calls"] for line in new_cost))
    new_lines = {
        "cost": new_cost,
        "operations": [{"name": s.name, **{f: getattr(s, f) for f in OP_SUMS}} for s in stats],
    }

    _shift_rollups(old_key, old_lines, new_lines, _session_key(session))


def rekey_session_figures(session: Session) -> None:
    """Move the session's existing lines to its current key (its raw rows are gone).

    The caller holds the analysis lock and the session's row lock.
    """
    old_key = _session_key(session) if session.rollup_day else None
    lines = {
        "cost": list(CostLine.objects.filter(session=session).values(
            "day", "provider", "model", *COST_SUMS)),
        "operations": list(OperationStat.objects.filter(session=session).values(
            "name", *OP_SUMS)),
    }
    _set_rollup_key(session)
    _shift_rollups(old_key, lines, lines, _session_key(session))


def _shift_rollups(old_key: dict | None, old_lines: dict, new_lines: dict,
                   new_key: dict) -> None:
    """Take a session's old lines off the rollups under its old key; add its new ones."""
    for rollup in ROLLUPS:
        delta: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
        if old_key is not None:
            _accumulate(delta, rollup, old_lines[rollup.lines], old_key, sign=-1)
        _accumulate(delta, rollup, new_lines[rollup.lines], new_key, sign=1)
        _apply(rollup, delta)


def _set_rollup_key(session: Session, **also) -> None:
    """Record the session's current key, with the fields ``also``, in one UPDATE (none if
    nothing changed)."""
    session.save_changed(
        rollup_episode=session.episode.code if session.episode_id else "",
        rollup_workflow=session.workflow, rollup_release=session.release,
        rollup_day=session.started_at.astimezone(UTC).date(), **also)


def _session_key(session: Session) -> dict:
    return {
        "project_id": session.project_id,
        "session__rollup_episode": session.rollup_episode,
        "session__rollup_workflow": session.rollup_workflow,
        "session__rollup_release": session.rollup_release,
        "session__rollup_day": session.rollup_day,
    }


def _stat_fields(stat: NameStat) -> dict:
    return {
        "name": stat.name, "occurrences": stat.occurrences, "failures": stat.failures,
        "total_duration_s": stat.total_duration_s, "self_time_s": stat.self_time_s,
        "share": stat.share, "is_bottleneck": stat.is_bottleneck,
        "cache_hits": stat.cache_hits, "cache_misses": stat.cache_misses,
    }


def _accumulate(delta, rollup: Rollup, lines: Iterable[dict], session_key: dict, *,
                sign: int) -> None:
    """Add ``sign`` × the lines of one session to ``delta``, per rollup key."""
    keys_seen = set()
    for line in lines:
        values = {**session_key, **line}
        key = (session_key["project_id"], *(values[path] for path in rollup.key.values()))
        keys_seen.add(key)
        for field in rollup.sums:
            delta[key][field] += sign * line[field]
    for key in keys_seen:  # a session counts once per row, however many lines it has there
        delta[key]["sessions"] += sign


def _apply(rollup: Rollup, delta: dict) -> None:
    """Add ``delta`` to the rollup rows, creating rows as needed; drop emptied rows."""
    changed = {key: entry for key, entry in delta.items() if any(entry.values())}
    if not changed:
        return
    table = rollup.model._meta.db_table
    value_fields = ("sessions", *rollup.sums)
    columns = ", ".join((*rollup.key_fields, *value_fields))
    placeholders = ", ".join(["%s"] * (len(rollup.key_fields) + len(value_fields)))
    increments = ", ".join(f"{f} = {table}.{f} + excluded.{f}" for f in value_fields)
    # Sorted keys: concurrent analyses touch shared rows in one order, so never deadlock.
    rows = [(*key, *(changed[key][f] for f in value_fields)) for key in sorted(changed)]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(rollup.key_fields)}) DO UPDATE SET {increments}",
            rows,
        )
    rollup.model.objects.filter(sessions__lte=0).delete()


# --- rebuild from the lines -----------------------------------------------------------


@transaction.atomic
def rebuild_all() -> None:
    """Recompute every rollup from the analyzed sessions' lines.

    Each rollup is one INSERT … SELECT: the rows never travel through Python.
    """
    _hold_rebuild_lock()
    _refresh_rollup_keys()
    sources = {
        "cost": CostLine.objects.filter(session__analyzed_at__isnull=False),
        "operations": OperationStat.objects.filter(session__analyzed_at__isnull=False),
    }
    for rollup in ROLLUPS:
        _empty(rollup.model)
        grouped = (
            sources[rollup.lines]
            .values("session__project_id", *rollup.key.values())
            .annotate(rollup_sessions=Count("session_id", distinct=True),
                      **{f"rollup_{f}": Sum(f) for f in rollup.sums})
            .order_by()
        )
        _insert_from(rollup.model, (*rollup.key_fields, "sessions", *rollup.sums), grouped)


def _refresh_rollup_keys() -> None:
    """Point every analyzed session's rollup key at its current episode, workflow, day."""
    episode_code = Coalesce(
        Subquery(Episode.objects.filter(pk=OuterRef("episode_id")).values("code")), Value("")
    )
    stale = Session.objects.filter(analyzed_at__isnull=False).annotate(
        current_episode=episode_code, current_day=TruncDate("started_at", tzinfo=UTC)
    ).filter(
        Q(rollup_day__isnull=True)
        | ~Q(rollup_day=F("current_day"))
        | ~Q(rollup_episode=F("current_episode"))
        | ~Q(rollup_workflow=F("workflow"))
        | ~Q(rollup_release=F("release"))
    )
    Session.objects.filter(pk__in=stale.values("pk")).update(
        rollup_episode=episode_code,
        rollup_workflow=F("workflow"),
        rollup_release=F("release"),
        rollup_day=TruncDate("started_at", tzinfo=UTC),
    )


def _empty(model) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # TRUNCATE (transactional in PostgreSQL) leaves no dead rows behind for the
            # inserts that follow; the lock it takes is implied by the rebuild lock.
            cursor.execute(f"TRUNCATE {table}")
        else:
            cursor.execute(f"DELETE FROM {table}")


def _insert_from(model, columns: tuple, query) -> None:
    # Django has no INSERT … SELECT; the SELECT is the ORM's own SQL for ``query``, whose
    # columns come in values() order then annotate() order, matching ``columns``.
    select_sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) {select_sql}", params
        )
