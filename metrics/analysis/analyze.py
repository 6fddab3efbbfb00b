"""Analysis of one stored session: what is slow, what it cost, what to fix.

Everything here reads rows with ``values_list`` (no model objects), computes with the pure
functions of operation_stats and findings, and writes in one transaction holding the
session's row lock, so running it twice, or twice at once, gives the same result.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from metrics.analysis import budgets, findings, pricing, regressions, rollups
from metrics.analysis.findings import CallRecord, FindingDraft
from metrics.analysis.operation_stats import (
    NameStat,
    TimedOperation,
    name_stats,
    wall_time_s,
)
from metrics.analysis.totals import refresh_session_totals
from metrics.models import ApiCall, Finding, Regression, Session


def analyze_session(session: Session, *, only_for_merge: datetime | None = None) -> bool:
    """Price, summarise, judge and roll up one session; records ``analyzed_at``.

    With ``only_for_merge`` (the ``merged_at`` a task was enqueued for), nothing is done
    unless that is still the session's latest merge and it has not been analyzed yet;
    checked under the session's row lock, so of the tasks of one merge just one works.
    Returns whether the analysis ran.
    """
    started = timezone.now()
    with transaction.atomic():
        rollups.hold_analysis_lock()
        session = Session.objects.select_for_update(of=("self",)).select_related(
            "episode"
        ).get(pk=session.pk)
        if only_for_merge is not None and not _merge_is_due(session, only_for_merge):
            return False
        if session.detail_pruned_at is None:
            _derive_from_rows(session)
        else:
            # Retention removed the raw rows: the figures made from them are all there
            # is, so keep them and only move them if an editor changed the session's key.
            rollups.rekey_session_figures(session)
        budgets.check_budgets(session)
        Regression.objects.filter(session=session).delete()
        Regression.objects.bulk_create(regressions.find_regressions(session))
        # analyzed_at records when this analysis began: a merge committed meanwhile has a
        # later merged_at, so the sweep will pick the session up again.
        Session.objects.filter(pk=session.pk).update(analyzed_at=started)
    return True


def _merge_is_due(session: Session, merged_at: datetime) -> bool:
    if session.merged_at > merged_at:
        return False  # a newer part arrived: its own task analyzes both
    return session.analyzed_at is None or session.analyzed_at < session.merged_at


def _derive_from_rows(session: Session) -> None:
    """Price, total and summarise the session's raw rows; replace its lines and findings."""
    pricing.price_calls(ApiCall.objects.filter(session=session))
    refresh_session_totals(session)
    operations = timed_operations(session)
    wall = wall_time_s(operations, started_at=session.started_at, ended_at=session.ended_at)
    stats = name_stats(operations, wall_time_s=wall, threshold=settings.BOTTLENECK_THRESHOLD)
    rollups.replace_session_figures(session, stats)
    _replace_findings(session, detect_findings(session, stats))


def timed_operations(session: Session) -> list[TimedOperation]:
    rows = session.operations.filter(duration_s__isnull=False).values_list(
        "client_id", "parent_client_id", "name", "started_at", "duration_s", "success",
        "cache_hits", "cache_misses",
    )
    return [TimedOperation(*row) for row in rows.iterator(chunk_size=5000)]


def call_records(session: Session) -> list[CallRecord]:
    rows = session.api_calls.values_list(
        "client_id", "operation_client_id", "provider", "model", "at", "latency_s",
        "prompt_hash", "error", "total_tokens", "cost_usd", "cost_source",
    )
    return [CallRecord(*row) for row in rows.iterator(chunk_size=5000)]


def detect_findings(session: Session, stats: list[NameStat]) -> list[FindingDraft]:
    calls = call_records(session)
    operation_names = dict(
        session.operations.filter(
            client_id__in={c.operation_id for c in calls if c.operation_id}
        ).values_list("client_id", "name")
    ) if calls else {}
    return [
        *findings.repeated_prompts(calls, min_repeats=settings.FINDING_REPEATED_PROMPT_MIN),
        *findings.sequential_calls(
            calls, operation_names, min_calls=settings.FINDING_SEQUENTIAL_CALLS_MIN
        ),
        *findings.retry_bursts(
            calls,
            min_failures=settings.FINDING_RETRY_BURST_MIN_FAILURES,
            window_s=settings.FINDING_RETRY_BURST_WINDOW_S,
        ),
        *findings.low_cache_operations(
            stats,
            session_hit_rate=session.cache_hit_rate,
            ratio=settings.FINDING_LOW_CACHE_RATIO,
            min_lookups=settings.FINDING_LOW_CACHE_MIN_LOOKUPS,
        ),
        *findings.unpriced_calls(calls),
    ]


def _replace_findings(session: Session, drafts: list[FindingDraft]) -> None:
    Finding.objects.filter(session=session).delete()
    Finding.objects.bulk_create(
        Finding(
            session=session,
            kind=d.kind,
            subject=d.subject[:200],
            summary=d.summary[:500],
            evidence=d.evidence,
            impact_s=d.impact_s,
            impact_usd=d.impact_usd,
        )
        for d in drafts
    )
