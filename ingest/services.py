"""Storing schema-v1 payloads: one transaction per session, merged, never duplicated."""

import logging
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ingest import bulk
from ingest.schemas import SessionIn, SessionPayload
from metrics.models import ApiCall, Episode, Operation, Project, Session
from metrics.tasks import analyze_session
from metrics.totals import refresh_session_totals

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreResult:
    session: Session
    created: bool


def store_payload(project: Project, payload: SessionPayload) -> StoreResult:
    """Merge one session payload into ``project``; resending the same payload changes nothing."""
    with transaction.atomic():
        session, created = _lock_or_create_session(project, payload.session)
        if not created:
            _merge_session_fields(session, payload.session)
        _write_rows(session, payload, fresh=created)
        refresh_session_totals(session)
        transaction.on_commit(partial(_enqueue_analysis, session.pk), robust=True)
    return StoreResult(session=session, created=created)


def _lock_or_create_session(project: Project, incoming: SessionIn) -> tuple[Session, bool]:
    # Two requests for the same new session race on the unique (project, external_id)
    # index: the loser's INSERT waits for the winner's commit, fails, and get_or_create
    # falls back to reading the winner's row under a row lock, so it merges instead.
    now = timezone.now()
    return Session.objects.select_for_update().get_or_create(
        project=project,
        external_id=incoming.id,
        defaults={**_session_fields(project, incoming), "merged_at": now},
    )


def _session_fields(project: Project, incoming: SessionIn) -> dict:
    fields: dict = {
        "started_at": incoming.started_at,
        "status": incoming.status,
        "ended_at": incoming.ended_at,
        "duration_s": _duration_s(incoming),
    }
    if incoming.episode is not None:
        fields["episode"] = _episode(project, incoming.episode)
    for name in ("workflow", "release", "environment", "host"):
        value = getattr(incoming, name)
        if value is not None:
            fields[name] = value
    if incoming.cache is not None:
        fields.update(
            cache_hits=incoming.cache.hits,
            cache_misses=incoming.cache.misses,
            cache_hit_rate=_hit_rate(incoming.cache.hits, incoming.cache.misses),
            cache_by_name={
                name: counts.model_dump() for name, counts in incoming.cache.by_name.items()
            },
        )
    if incoming.counters is not None:
        fields["counters"] = dict(incoming.counters)
    if incoming.tags is not None:
        fields["tags"] = list(dict.fromkeys(incoming.tags))
    if incoming.metadata is not None:
        fields["metadata"] = dict(incoming.metadata)
    if incoming.sdk is not None:  # the exporter's counts are cumulative: the newest wins
        fields["sdk_report"] = incoming.sdk.model_dump()
    return fields


def _merge_session_fields(session: Session, incoming: SessionIn) -> None:
    """Newest values win, except that a finished session never goes back to running.

    A ``running`` part arriving after the session finished is an older flush delivered
    late (a retry from the spool, say): its operations and calls still merge, but its
    session-level figures are stale and are not applied.
    """
    session.merged_at = timezone.now()
    if session.is_finished and incoming.status == Session.Status.RUNNING:
        session.save(update_fields=["merged_at"])
        return
    fields = _session_fields(session.project, incoming)
    for corrected in session.edited_fields:  # an editor's correction outranks a resend
        fields.pop(corrected, None)
    # Keys the client stopped sending (or an editor added) survive a merge.
    fields["counters"] = {**session.counters, **fields.get("counters", {})}
    fields["metadata"] = {**session.metadata, **fields.get("metadata", {})}
    if "tags" not in session.edited_fields:
        fields["tags"] = list(dict.fromkeys([*session.tags, *fields.get("tags", [])]))
    for name, value in fields.items():
        setattr(session, name, value)
    session.save()


def _episode(project: Project, code: str) -> Episode:
    episode, _ = Episode.objects.get_or_create(project=project, code=code)
    return episode


def _duration_s(incoming: SessionIn) -> float | None:
    if incoming.ended_at is None:
        return None
    return (incoming.ended_at - incoming.started_at).total_seconds()


def _hit_rate(hits: int, misses: int) -> float | None:
    lookups = hits + misses
    return hits / lookups if lookups else None


def _write_rows(session: Session, payload: SessionPayload, *, fresh: bool) -> None:
    ids = bulk.operation_ids(session.pk, payload.operations, payload.api_calls, fresh=fresh)
    bulk.write_rows(
        bulk.OPERATIONS, bulk.operation_rows(session.pk, payload.operations, ids), fresh=fresh
    )
    bulk.write_rows(
        bulk.API_CALLS,
        bulk.api_call_rows(session.pk, payload.api_calls, ids, default_at=session.started_at),
        fresh=fresh,
    )
    if not fresh and payload.operations:
        arrived = sorted(op.id for op in payload.operations)
        for start in range(0, len(arrived), bulk.IN_CHUNK):
            _link_waiting_rows(session, arrived[start : start + bulk.IN_CHUNK])


def _link_waiting_rows(session: Session, arrived: list[str]) -> None:
    """Link rows stored earlier that named an operation which has only now arrived.

    Children finish, and are flushed, before their parents; only those few waiting rows
    are rewritten, never the whole session.
    """
    operations = Operation.objects.filter(session=session)
    operations.filter(parent__isnull=True, parent_client_id__in=arrived).update(
        parent_id=Subquery(
            operations.filter(client_id=OuterRef("parent_client_id")).values("pk")[:1]
        )
    )
    ApiCall.objects.filter(
        session=session, operation__isnull=True, operation_client_id__in=arrived
    ).update(
        operation_id=Subquery(
            operations.filter(client_id=OuterRef("operation_client_id")).values("pk")[:1]
        )
    )


def _enqueue_analysis(session_pk: int) -> None:
    try:
        analyze_session.delay(session_pk)
    except Exception:
        # Typically the broker is away. The session is stored and its analyzed_at stays
        # behind merged_at, so the periodic sweep analyzes it once the broker is back.
        logger.exception("analysis of session %s not enqueued; the sweep will retry", session_pk)
