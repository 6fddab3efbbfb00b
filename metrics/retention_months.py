"""Retention by the month: a past month whose sessions may all be pruned loses its
partitions whole (PostgreSQL, partitioned raw tables; see metrics.partitions).

A month's operations and API calls partitions go together once every session in their key
range that still has raw rows is prunable (old enough under its project's period,
analyzed, neither baseline nor pinned, and of the projects being pruned). Its sessions are
marked pruned first, then both partitions are dropped: one short lock instead of a month
of batched deletes. A month with a single session to keep is left to the batched deletes.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from metrics import partitions
from metrics.models import ApiCall, Operation, Session


@dataclass
class PrunedMonth:
    name: str  # the operations partition's
    low: int | None
    high: int
    operations: int
    api_calls: int
    sessions_by_project: dict[str, int] = field(default_factory=dict)
    dropped: bool = False


def in_any(months: Iterable[PrunedMonth]) -> Q:
    """Sessions whose keys lie in one of ``months``."""
    return reduce(or_, (_keys(month.low, month.high) for month in months), Q(pk__in=[]))


def _keys(low: int | None, high: int) -> Q:
    return Q(pk__lt=high) if low is None else Q(pk__gte=low, pk__lt=high)


def prune_whole_months(
    prunable: list[QuerySet], *, dry_run: bool, say: Callable[[str], None], now: datetime
) -> list[PrunedMonth]:
    """Drop (or with ``dry_run`` name) the past months in which every session with raw
    rows is in one of the ``prunable`` querysets."""
    if not prunable or not partitions.is_partitioned():
        return []
    prunable_sessions = reduce(or_, prunable)
    done = []
    for ops_part, calls_part in _past_month_pairs(now):
        month = _prunable_month(ops_part, calls_part, prunable_sessions)
        if month is None:
            continue
        if dry_run:
            say(f"would drop {ops_part.name} and {calls_part.name}: "
                f"{sum(month.sessions_by_project.values())} sessions, "
                f"{month.operations} operations, {month.api_calls} API calls")
            done.append(month)
            continue
        with transaction.atomic():
            Session.objects.filter(_keys(month.low, month.high)).filter(
                pk__in=prunable_sessions.values("pk")).update(detail_pruned_at=now)
        month.dropped = (partitions.drop_partition(calls_part)
                         and partitions.drop_partition(ops_part))
        if month.dropped:
            say(f"dropped {ops_part.name} and {calls_part.name}: "
                f"{sum(month.sessions_by_project.values())} sessions, "
                f"{month.operations} operations, {month.api_calls} API calls")
            done.append(month)
        else:
            say(f"{ops_part.name}: ingest held its lock, dropped on the next run")
    return done


def _past_month_pairs(now: datetime):
    """(operations, API calls) partitions of the same key range that lies wholly before
    this month; the default partition never."""
    this_month = partitions.month_block(now.date())
    calls = {(p.low, p.high): p for p in partitions.partitions("metrics_apicall")}
    for ops_part in partitions.partitions("metrics_operation"):
        if ops_part.is_default or ops_part.high is None or ops_part.high > this_month:
            continue
        calls_part = calls.get((ops_part.low, ops_part.high))
        if calls_part is not None:
            yield ops_part, calls_part


def _prunable_month(ops_part, calls_part, prunable: QuerySet) -> PrunedMonth | None:
    keys = _keys(ops_part.low, ops_part.high)
    with_rows = Session.objects.filter(keys).filter(detail_pruned_at__isnull=True).filter(
        Exists(Operation.objects.filter(session=OuterRef("pk")))
        | Exists(ApiCall.objects.filter(session=OuterRef("pk")))
    )
    if with_rows.exclude(pk__in=prunable.values("pk")).exists():
        return None  # a session to keep whole, too recent, or of another project
    operations, api_calls = partitions.row_counts(ops_part), partitions.row_counts(calls_part)
    if not operations and not api_calls:
        return None  # nothing to gain; an empty month may still fill (a late resend)
    by_project = Counter(with_rows.values_list("project__slug", flat=True))
    return PrunedMonth(ops_part.name, ops_part.low, ops_part.high, operations, api_calls,
                       dict(by_project))
