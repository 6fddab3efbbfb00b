"""Celery tasks: thin wrappers that load by id and call metrics.analysis."""

from collections.abc import Callable
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from metrics import partitions, retention, session_indexes
from metrics.alerts.tasks import alert_on_session
from metrics.analysis import analyze, repricing, rollups, siblings
from metrics.episode_runs import refresh_latest_runs_now
from metrics.models import PriceChange, Session

SWEEP_BATCH = 500


# OperationalError covers a database restart or a lock timeout, which may well succeed
# next time; anything else is a bug that a retry would only repeat.
@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def analyze_session(session_pk: int, merged_at_iso: str | None = None) -> bool:
    """Analyze one session; with ``merged_at_iso`` (ingest's), only if that merge is due.

    A session flushed in many parts enqueues one task per part, each held back by the
    settle window (ANALYSIS_SETTLE_S) and naming the merge it was enqueued for. A task
    whose merge was overtaken by a newer one skips (the newer part's task follows), and
    so does one whose merge was analyzed already: the parts coalesce into one analysis.
    Tasks without a merge (admin actions, repricing, the sweep) always analyze.
    Returns whether the analysis ran.
    """
    session = Session.objects.filter(pk=session_pk).first()
    if session is None:  # deleted since it was enqueued
        return False
    merged_at = datetime.fromisoformat(merged_at_iso) if merged_at_iso else None
    return _analyze_and_alert(
        session, lambda: analyze.analyze_session(session, only_for_merge=merged_at))


def _analyze_and_alert(session: Session, analysis: Callable[[], bool]) -> bool:
    """Run ``analysis`` and the alerts on what it found, then judge the siblings again."""
    # One transaction: the alert events are recorded with the analysis that found them, or
    # not at all (a retry then finds them again).
    with transaction.atomic():
        analyzed = analysis()
        if analyzed:
            alert_on_session(session)
    if analyzed:
        # After the commit above: siblings judged again see this session as stored.
        siblings.rejudge_siblings(session)
        refresh_latest_runs_now([session.episode_id])  # see metrics.episode_runs
    return analyzed


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def rebuild_rollups() -> None:
    rollups.rebuild_all()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def reprice_model(change_pk: int) -> int:
    """Reprice each session a recorded price change affects, one task per session."""
    change = PriceChange.objects.filter(pk=change_pk).first()
    if change is None:
        return 0
    pks = repricing.start(change)
    for pk in pks:
        reprice_session.delay(pk, change_pk)
    return len(pks)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def reprice_session(session_pk: int, change_pk: int) -> bool:
    """Analyze one session again for a price change, keeping its cost before and after."""
    session = Session.objects.filter(pk=session_pk).first()
    change = PriceChange.objects.filter(pk=change_pk).first()
    if change is None:
        return False
    if session is None:  # deleted since it was enqueued
        repricing.skip(change_pk)
        repriced = False
    else:
        repriced = _analyze_and_alert(session,
                                      lambda: repricing.reprice_session(session, change))
    repricing.finish_if_done(change_pk)
    return repriced


@shared_task
def sweep_unanalyzed_sessions() -> int:
    """Enqueue sessions stored while the broker was away (or whose analysis failed)."""
    stale = (
        Session.objects.filter(Q(analyzed_at__isnull=True) | Q(analyzed_at__lt=F("merged_at")))
        # Give the after-commit enqueue a head start before re-enqueueing the same session.
        .filter(merged_at__lt=timezone.now() - timedelta(seconds=settings.SWEEP_GRACE_S))
        .order_by("merged_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    pks = list(stale)
    for pk in pks:
        analyze_session.delay(pk)
    return len(pks)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def prune_raw_rows() -> int:
    """Remove raw rows past each project's retention period; returns the sessions pruned."""
    result = retention.prune(batch_size=settings.RETENTION_BATCH_ROWS)
    return result.sessions


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def maintain_partitions() -> list[str]:
    """Make the coming months' partitions of the raw tables (PostgreSQL; else nothing)."""
    return partitions.maintain_partitions()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def rebuild_session_indexes() -> bool:
    """Rebuild the session table's indexes (PostgreSQL; else nothing); whether it ran."""
    return session_indexes.rebuild_session_indexes().ran
