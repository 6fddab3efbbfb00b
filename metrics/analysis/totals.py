"""The denormalised totals a session carries: recounted from its rows by the database, or,
when ingest merges a payload, moved by what the merge changed."""

from collections.abc import Iterable, Mapping

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from metrics.models import ApiCall, Operation, Session

# Sums over the session's API calls, by the Session field that holds each.
CALL_TOTALS = {
    "api_calls_count": Count("pk"),
    "api_errors_count": Count("pk", filter=Q(error=True)),
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
    "total_tokens": Coalesce(Sum("total_tokens"), 0),
    "cost_usd": Sum("cost_usd"),  # None for no priced call: stored as 0
    "cached_tokens": Coalesce(Sum("cached_tokens"), 0),
    "cache_write_tokens": Coalesce(Sum("cache_write_tokens"), 0),
}
TOTAL_FIELDS = [*CALL_TOTALS, "operations_count"]


def call_totals(calls: QuerySet[ApiCall]) -> dict:
    """What ``calls`` add to their session's totals (one aggregate query)."""
    totals = calls.aggregate(**CALL_TOTALS)
    totals["cost_usd"] = totals["cost_usd"] or 0
    return totals


def call_totals_of(session: Session, client_ids: Iterable[str], *, chunk: int) -> dict:
    """``call_totals`` of the session's stored calls with these client ids."""
    ordered = sorted(client_ids)
    totals = dict.fromkeys(CALL_TOTALS, 0)
    for start in range(0, len(ordered), chunk):
        part = call_totals(ApiCall.objects.filter(
            session=session, client_id__in=ordered[start : start + chunk]))
        for name, value in part.items():
            totals[name] += value
    return totals


def refresh_session_totals(session: Session) -> None:
    if session.detail_pruned_at is not None:
        return  # retention removed the rows: the totals are the record of what they held
    session.save_changed(**call_totals(ApiCall.objects.filter(session=session)),
                         operations_count=Operation.objects.filter(session=session).count())


def move_session_totals(session: Session, *, before: Mapping, after: Mapping,
                        operations_added: int) -> None:
    """Move the totals by a merge: ``before`` and ``after`` are ``call_totals_of`` the
    merged calls read just before and just after they were written, so a resent call
    counts once and an unchanged one not at all. Only the merged rows are read, never
    the whole session; the analysis that follows recounts it anyway."""
    if session.detail_pruned_at is not None:
        return  # as refresh_session_totals: the totals are the record of the pruned rows
    session.save_changed(
        **{name: getattr(session, name) + after[name] - before[name] for name in CALL_TOTALS},
        operations_count=session.operations_count + operations_added)
