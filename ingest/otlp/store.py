"""Decoded spans into sessions, through the schema-v1 store (``ingest.services``).

Which session a trace belongs to is decided under a per-trace lock, so two requests
carrying spans of one trace never disagree. A trace whose spans have named no session yet
waits in a session named after its trace id; when a later span names the session, that
waiting session's rows join the named one and the waiting session is removed, with its
share of the rollups, so no orphan is left behind.
"""

import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F

from ingest import bulk, services
from ingest.otlp import mapping
from ingest.otlp.carry import Carried, carry_and_retire
from ingest.otlp.spans import Decoded, Span
from ingest.schemas import SessionIn, SessionPayload
from metrics.analysis import rollups
from metrics.analysis.totals import refresh_session_totals
from metrics.models import ApiCall, OtlpReport, OtlpTrace, Project, Session

TRACE_LOCK_CLASS = 7_404_418  # advisory-lock namespace of OTLP traces
REPORT_TOP_N = 100  # ignored attribute names kept per session
MESSAGE_REASONS = 5


@dataclass
class Outcome:
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def message(self) -> str:
        shown = "; ".join(self.reasons[:MESSAGE_REASONS])
        more = len(self.reasons) - MESSAGE_REASONS
        return f"{self.rejected} spans rejected: {shown}" + (f" (+{more} more)" if more > 0 else "")


@dataclass
class Plan:
    """One target session: the spans it gets, the waiting sessions it absorbs."""

    spans: list[Span] = field(default_factory=list)
    traces: dict[str, bool] = field(default_factory=dict)  # trace id -> named
    absorb: list[Session] = field(default_factory=list)
    unreadable: int = 0  # spans of its traces that could not even be decoded


def store_spans(project: Project, decoded: Decoded) -> Outcome:
    outcome = Outcome(rejected=len(decoded.rejected),
                      reasons=[r.reason for r in decoded.rejected])
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in decoded.spans:
        by_trace[span.trace_id].append(span)
    if not by_trace:
        return outcome
    with transaction.atomic():
        _lock_traces(project, sorted(by_trace))
        plans = _plan(project, by_trace)
        _count_unreadable(plans, decoded)
        if any(plan.absorb for plan in plans.values()):
            rollups.hold_analysis_lock()  # before any session row lock, as analysis does
        for external_id in sorted(plans):
            _store_session(project, external_id, plans[external_id], outcome)
    return outcome


def _lock_traces(project: Project, trace_ids: list[str]) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: the transaction already holds the database's write lock
    keys = sorted({_lock_key(project.pk, trace_id) for trace_id in trace_ids})
    with connection.cursor() as cursor:
        # one statement, keys in ascending order: two requests never wait on each other
        # in opposite orders
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k)::text FROM unnest(%s::int[]) AS k",
            [TRACE_LOCK_CLASS, keys],
        )
        cursor.fetchall()


def _lock_key(project_pk: int, trace_id: str) -> int:
    return zlib.crc32(f"{project_pk}:{trace_id}".encode()) - 2**31  # an int4


def _plan(project: Project, by_trace: dict[str, list[Span]]) -> dict[str, Plan]:
    known = {
        row.trace_id: row
        for row in OtlpTrace.objects.filter(project=project, trace_id__in=list(by_trace))
        .select_related("session")
    }
    plans: dict[str, Plan] = defaultdict(Plan)
    for trace_id, spans in by_trace.items():
        named = next(filter(None, map(mapping.named_session, spans)), None)
        row = known.get(trace_id)
        if row is not None and (row.named or named is None):
            target = row.session.external_id
            plans[target].traces[trace_id] = row.named
        else:
            target = named or trace_id
            plans[target].traces[trace_id] = named is not None
            if row is not None and row.session.external_id != target:
                plans[target].absorb.append(row.session)  # it waited under the trace id
        plans[target].spans.extend(spans)
    return plans


def _count_unreadable(plans: dict[str, Plan], decoded: Decoded) -> None:
    """Spans rejected while decoding still count in their session's report, where the
    trace they name has spans that could be read."""
    unreadable = Counter(r.trace_id for r in decoded.rejected if r.trace_id)
    for plan in plans.values():
        plan.unreadable = sum(unreadable[trace_id] for trace_id in plan.traces)


def _store_session(project: Project, external_id: str, plan: Plan, outcome: Outcome) -> None:
    draft = mapping.draft(plan.spans)
    outcome.rejected += len(draft.rejected)
    outcome.reasons.extend(draft.rejected)
    existing = (
        Session.objects.select_for_update().filter(project=project, external_id=external_id)
        .first()
    )
    carried = [carry_and_retire(session) for session in plan.absorb]
    payload = _payload(external_id, draft, existing, carried)
    if payload is None:
        return  # nothing usable arrived and nothing was stored before
    result = services.store_payload(project, payload)
    session = result.session
    if _demote_wrapper_calls(session, payload, fresh=result.created):
        refresh_session_totals(session)
    _map_traces(project, session, plan.traces)
    _update_report(session, draft, carried, unreadable=plan.unreadable)


def _payload(external_id: str, draft: mapping.Draft, existing: Session | None,
             carried: list[Carried]) -> SessionPayload | None:
    session_in = _session_in(external_id, draft, existing, carried)
    if session_in is None:
        return None
    # Later copies of a row win: a span sent twice in one request is stored once.
    operations = {op.id: op for c in carried for op in c.operations}
    operations.update((op.id, op) for op in draft.operations)
    calls = {call.id: call for c in carried for call in c.api_calls}
    calls.update((call.id, call) for call in draft.api_calls)
    return SessionPayload.model_construct(
        schema_version=1, session=session_in, operations=list(operations.values()),
        api_calls=list(calls.values()),
    )


def _session_in(external_id: str, draft: mapping.Draft, existing: Session | None,
                carried: list[Carried]) -> SessionIn | None:
    """The session's span of time covers what is stored and what arrived; a merge would
    otherwise take this request's times as the newest values."""
    starts = [t for t in (draft.started_at, *(c.started_at for c in carried)) if t]
    ends = [t for t in (draft.ended_at, *(c.ended_at for c in carried)) if t]
    if existing is not None:
        starts.append(existing.started_at)
        ends.append(existing.ended_at or existing.started_at)
    if not starts:
        return None
    fields = {name: None for name in ("episode", "workflow", "release", "environment", "host")}
    for c in carried:
        fields.update({k: v for k, v in c.fields.items() if v})
    fields.update(draft.fields)
    statuses = {c.status for c in carried} | {existing.status if existing else None}
    return SessionIn.model_construct(
        id=external_id, started_at=min(starts), ended_at=max(ends) if ends else None,
        status=_status(draft, statuses), cache=None, counters=None, tags=None,
        metadata=None, **fields,
    )


def _status(draft: mapping.Draft, earlier: set[str | None]) -> str:
    """Failed stays failed and finished stays finished, whatever arrives later."""
    if draft.root_failed or Session.Status.FAILED in earlier:
        return Session.Status.FAILED
    if draft.has_root or Session.Status.COMPLETED in earlier:
        return Session.Status.COMPLETED
    return Session.Status.RUNNING


def _demote_wrapper_calls(session: Session, payload: SessionPayload, *, fresh: bool) -> int:
    """A span whose child span is a model call is an operation, not a second call.

    Either span may have arrived first: the parents of this payload's calls are looked
    up, and, for a session stored before, the calls among this payload's spans whose
    children were stored earlier. OTLP calls carry their own span's id as operation id.
    """
    calls = ApiCall.objects.filter(session=session, operation_client_id=F("client_id"))
    parent_of = {op.id: op.parent_id for op in payload.operations}
    call_ids = [call.id for call in payload.api_calls if call.operation_id == call.id]
    parents = sorted({parent_of[i] for i in call_ids if parent_of.get(i)})
    wrappers: set[str] = set()
    for chunk in _chunks(parents):
        wrappers.update(calls.filter(client_id__in=chunk).values_list("client_id", flat=True))
    if not fresh:
        for chunk in _chunks(call_ids):
            wrappers.update(calls.filter(operation__parent_client_id__in=chunk).values_list(
                "operation__parent_client_id", flat=True))
    deleted = 0
    for chunk in _chunks(sorted(wrappers)):
        deleted += calls.filter(client_id__in=chunk).delete()[0]
    return deleted


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + bulk.IN_CHUNK] for i in range(0, len(ids), bulk.IN_CHUNK)]


def _map_traces(project: Project, session: Session, traces: dict[str, bool]) -> None:
    OtlpTrace.objects.bulk_create(
        [OtlpTrace(project=project, trace_id=t, session=session, named=named)
         for t, named in traces.items()],
        update_conflicts=True, unique_fields=["project", "trace_id"],
        update_fields=["session", "named"],
    )


def _update_report(session: Session, draft: mapping.Draft, carried: list[Carried], *,
                   unreadable: int) -> None:
    # The session's row lock (held since store_payload) keeps other exports off this row.
    report = OtlpReport.objects.filter(session=session).first() or OtlpReport(session=session)
    ignored = Counter(report.ignored_attributes)
    ignored.update(draft.ignored)
    report.spans_received += draft.received + unreadable
    report.spans_rejected += len(draft.rejected) + unreadable
    for c in carried:
        ignored.update(c.ignored)
        report.spans_received += c.received
        report.spans_rejected += c.rejected
    report.ignored_attributes = dict(ignored.most_common(REPORT_TOP_N))
    report.save()
