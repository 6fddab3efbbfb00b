"""Storing schema-v1 payloads: one transaction per session, merged, never duplicated."""

from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from ingest import bounds, bulk, merge_order, split_parts, trees
from ingest.errors import PayloadRefused
from ingest.schemas import SessionIn, SessionPayload
from metrics.analysis.totals import (
    TOTAL_FIELDS,
    call_totals_of,
    move_session_totals,
    refresh_session_totals,
)
from metrics.dispatch import enqueue_after_commit
from metrics.episode_runs import refresh_latest_runs_now
from metrics.models import ApiCall, Episode, Operation, Project, Session
from metrics.tasks import analyze_session


@dataclass(frozen=True)
class StoreResult:
    session: Session
    created: bool


def store_payload(project: Project, payload: SessionPayload) -> StoreResult:
    """Merge one session payload into ``project``; resending the same payload changes nothing."""
    totals = _fresh_totals(payload)
    with transaction.atomic():
        session, created = _lock_or_create_session(project, payload.session, totals)
        _check_storable(session, payload, fresh=created)
        stale = not created and merge_order.is_stale(session, payload.session)
        before = None if created else _run_key(session)
        if created:
            _write_rows(session, payload, fresh=True)
            if totals is None:
                refresh_session_totals(session)
        else:
            _merge_session_fields(session, payload.session, stale=stale)
            _merge_rows(session, payload, stale=stale)
        # Held back for the settle window and named after this merge, so the parts of a
        # session flushed in many pieces coalesce into one analysis (metrics.tasks).
        enqueue_after_commit(
            analyze_session, session.pk, session.merged_at.isoformat(),
            countdown=settings.ANALYSIS_SETTLE_S,
        )
    if before != _run_key(session):
        previous_episode = before[0] if before else None
        refresh_latest_runs_now([previous_episode, session.episode_id])
    return StoreResult(session=session, created=created)


def _run_key(session: Session) -> tuple:
    """What an episode's latest runs depend on (metrics.episode_runs)."""
    return session.episode_id, session.status, session.started_at


def _fresh_totals(payload: SessionPayload) -> dict | None:
    """The totals ``refresh_session_totals`` would read back for a session this payload
    creates, whose rows are then exactly the payload's: counted here instead of re-read.

    None when a call carries a cost (the stored sum is of the values as the cost column
    rounds them, so the database adds those up) or a sum is over its cap (the payload is
    then refused by ``_check_storable``, before it could overflow the INSERT).
    """
    calls = payload.api_calls
    if any(call.cost_usd is not None for call in calls):
        return None
    sums = _payload_sums(payload)
    if bounds.sums_over_bound(_stored_sums(None, fresh=True), sums):
        return None
    totals = {
        "api_calls_count": len(calls),
        "api_errors_count": sum(1 for call in calls if call.error),
        "prompt_tokens": sums["prompt_tokens"],
        "completion_tokens": sums["completion_tokens"],
        "total_tokens": sums["total_tokens"],
        "cost_usd": 0,
        "cached_tokens": sums["cached_tokens"],
        "cache_write_tokens": sums["cache_write_tokens"],
        "operations_count": len(payload.operations),  # ids are unique within a payload
    }
    assert totals.keys() == set(TOTAL_FIELDS)
    return totals


def _check_storable(session: Session, payload: SessionPayload, *, fresh: bool) -> None:
    """Refuse (rolling the transaction back) what the schema alone cannot judge."""
    if payload.api_calls:  # without calls no sum grows
        over = bounds.sums_over_bound(_stored_sums(session, fresh=fresh), _payload_sums(payload))
        if over:
            raise PayloadRefused(["api_calls"], "; ".join(over))
    lookup = None if fresh else partial(_stored_parents, session.pk)
    trees.refuse_cycles(payload.operations, lookup)


def _stored_sums(session: Session | None, *, fresh: bool) -> dict[str, float]:
    if fresh:
        return dict.fromkeys(bounds.SESSION_SUMS, 0)
    stored = {name: getattr(session, name) for name in bounds.SESSION_SUMS}
    stored["cost_usd"] = float(stored["cost_usd"])
    return stored


def _payload_sums(payload: SessionPayload) -> dict[str, float]:
    calls = payload.api_calls
    return {
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
        "total_tokens": sum(bulk.total_tokens(c) for c in calls),
        "cost_usd": sum(c.cost_usd or 0.0 for c in calls),
        "cached_tokens": sum(c.cached_tokens for c in calls),
        "cache_write_tokens": sum(c.cache_write_tokens for c in calls),
    }


def _stored_parents(session_pk: int, client_ids: set[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    ordered = sorted(client_ids)
    for start in range(0, len(ordered), bulk.IN_CHUNK):
        found.update(
            Operation.objects.filter(
                session_id=session_pk, client_id__in=ordered[start : start + bulk.IN_CHUNK]
            ).values_list("client_id", "parent_client_id")
        )
    return found


def _lock_or_create_session(
    project: Project, incoming: SessionIn, totals: dict | None
) -> tuple[Session, bool]:
    # Two requests for the same new session race on the unique (project, external_id)
    # index: the loser's INSERT waits for the winner's commit, fails, and get_or_create
    # falls back to reading the winner's row under a row lock, so it merges instead.
    now = timezone.now()
    return Session.objects.select_for_update().get_or_create(
        project=project,
        external_id=incoming.id,
        defaults={
            **_session_fields(project, incoming),
            **split_parts.part_fields(None, incoming),
            "merged_at": now,
            "client_sequence": incoming.sequence,
            **(totals or {}),
        },
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
    if incoming.peak_memory_bytes is not None:  # a high-water mark: the newest is highest
        fields["peak_memory_bytes"] = incoming.peak_memory_bytes
    return fields


def _merge_session_fields(session: Session, incoming: SessionIn, *, stale: bool) -> None:
    """The newest snapshot's values win (ingest.merge_order says which is newest).

    A stale snapshot (a ``running`` part arriving after the session finished, or one with
    a lower sequence: an older flush delivered late, say by a retry from the spool) still
    merges its operations and calls, but its session-level figures are not applied.
    """
    merged_at = timezone.now()
    if stale:
        session.save_changed(merged_at=merged_at)
        return
    fields = _session_fields(session.project, incoming)
    fields.update(split_parts.part_fields(session.split_parts, incoming))
    for corrected in session.edited_fields:  # an editor's correction outranks a resend
        fields.pop(corrected, None)
    # Keys the client stopped sending (or an editor added) survive a merge.
    fields["counters"] = {**session.counters, **fields.get("counters", {})}
    fields["metadata"] = {**session.metadata, **fields.get("metadata", {})}
    if "tags" not in session.edited_fields:
        fields["tags"] = list(dict.fromkeys([*session.tags, *fields.get("tags", [])]))
    if "episode" in fields:  # compared by key, without loading the stored episode
        fields["episode_id"] = fields.pop("episode").pk
    # Only what changed is written (Session.save_changed): the merge time always does.
    session.save_changed(merged_at=merged_at,
                         client_sequence=merge_order.newest_sequence(session, incoming),
                         **fields)


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


def _merge_rows(session: Session, payload: SessionPayload, *, stale: bool) -> None:
    """Write the payload's rows into a stored session and move its totals by what changed."""
    call_ids = [call.id for call in payload.api_calls]
    before = call_totals_of(session, call_ids, chunk=bulk.IN_CHUNK)
    added = _write_rows(session, payload, fresh=False, stale=stale)
    after = call_totals_of(session, call_ids, chunk=bulk.IN_CHUNK)
    move_session_totals(session, before=before, after=after, operations_added=added)


def _write_rows(
    session: Session, payload: SessionPayload, *, fresh: bool, stale: bool = False
) -> int:
    """Upsert the payload's rows; returns how many operations were new to the session."""
    ids, added = bulk.operation_ids(session.pk, payload.operations, payload.api_calls,
                                    fresh=fresh)
    operations_table = bulk.OPERATIONS_FROM_STALE if stale else bulk.OPERATIONS
    bulk.write_rows(
        operations_table, bulk.operation_rows(session.pk, payload.operations, ids), fresh=fresh
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
    return added


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
