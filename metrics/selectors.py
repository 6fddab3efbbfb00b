"""Reads: querysets and aggregates for the API and the dashboard, computed by the database."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Avg, Count, F, FloatField, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from metrics.models import (
    ApiCall,
    BudgetCheck,
    CostLine,
    Episode,
    Finding,
    Operation,
    OperationStat,
    OtlpReport,
    Project,
    Regression,
    Session,
)

SLOWEST_OPERATIONS = 5


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class SessionFilters:
    episode: str | None = None
    workflow: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def sessions(*, project: Project, filters: SessionFilters) -> QuerySet[Session]:
    qs = Session.objects.filter(project=project).select_related("episode", "project")
    if filters.episode:
        qs = qs.filter(episode__code=filters.episode)
    if filters.workflow:
        qs = qs.filter(workflow=filters.workflow)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.since:
        qs = qs.filter(started_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(started_at__lt=filters.until)
    return qs.order_by("-started_at", "-pk")


def session_page(
    qs: QuerySet[Session], *, cursor: str | None, limit: int
) -> tuple[list[Session], str | None]:
    """Keyset paging over (started_at, pk) descending: stable while sessions arrive."""
    if cursor:
        started_at, pk = _decode_session_cursor(cursor)
        qs = qs.filter(Q(started_at__lt=started_at) | Q(started_at=started_at, pk__lt=pk))
    rows = list(qs[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode(f"{last.started_at.isoformat()}|{last.pk}")


def session_by_external_id(*, project: Project, external_id: str) -> Session | None:
    return (
        Session.objects.select_related("episode", "project")
        .filter(project=project, external_id=external_id)
        .first()
    )


def slowest_operations(session: Session, *, limit: int = SLOWEST_OPERATIONS) -> QuerySet:
    return (
        Operation.objects.filter(session=session, duration_s__isnull=False)
        .order_by("-duration_s", "pk")
        .values("client_id", "name", "duration_s")[:limit]
    )


@dataclass(frozen=True)
class SessionReport:
    """What analysis found for one session: the session page and the API detail both
    read it from here."""

    session: Session
    bottlenecks: list[OperationStat]
    findings: list[Finding]
    regressions: list[Regression]
    slowest: list[dict]
    budget_checks: list[BudgetCheck]
    calls_by_model: list[dict]
    cache_by_operation: list[OperationStat]
    otlp: dict | None  # what the OTLP receiver could not map, for sessions sent as traces

    @property
    def sdk(self) -> dict | None:
        """The SDK's own health as its exporter last reported it."""
        return self.session.sdk_report

    @property
    def unpriced_calls(self) -> int:
        return sum(row["unpriced"] for row in self.calls_by_model)

    @property
    def budget_violations(self) -> int:
        return sum(1 for check in self.budget_checks if not check.passed)


def session_report(session: Session) -> SessionReport:
    stats = session.operation_stats
    return SessionReport(
        session=session,
        bottlenecks=list(stats.filter(is_bottleneck=True).order_by("-share", "name")),
        findings=list(Finding.objects.filter(session=session)),
        regressions=list(Regression.objects.filter(session=session)),
        slowest=list(slowest_operations(session)),
        budget_checks=list(
            BudgetCheck.objects.filter(session=session).select_related("budget")
            .order_by("budget__name")
        ),
        calls_by_model=calls_by_model(session),
        cache_by_operation=list(
            stats.filter(Q(cache_hits__gt=0) | Q(cache_misses__gt=0)).order_by("name")
        ),
        otlp=otlp_report(session),
    )


def calls_by_model(session: Session) -> list[dict]:
    """The session's calls per provider and model: counts, tokens, cost, latency."""
    if session.detail_pruned_at is not None:
        return pruned_calls_by_model(session)
    return list(
        ApiCall.objects.filter(session=session)
        .values("provider", "model")
        .annotate(calls=Count("pk"), errors=Count("pk", filter=Q(error=True)),
                  tokens=Sum("total_tokens"), cost=Sum("cost_usd"),
                  avg_latency_s=Avg("latency_s"),
                  unpriced=Count("pk", filter=Q(cost_source=ApiCall.CostSource.UNPRICED)))
        .order_by("-calls", "model")
    )


def pruned_calls_by_model(session: Session) -> list[dict]:
    """The same from the session's cost lines, once retention removed its calls.

    The lines keep no latencies, so the average latency is unknown (None), not 0.
    """
    return list(
        CostLine.objects.filter(session=session)
        .values("provider", "model")
        .annotate(calls=Sum("calls"), errors=Sum("errors"), tokens=Sum("total_tokens"),
                  cost=Sum("cost_usd"), unpriced=Sum("unpriced_calls"))
        .annotate(avg_latency_s=Value(None, output_field=FloatField()))
        .order_by("-calls", "model")
    )


def episodes_with_totals(*, project: Project) -> QuerySet[Episode]:
    return (
        Episode.objects.filter(project=project)
        .annotate(
            session_count=Count("sessions"),
            duration_total_s=Coalesce(Sum("sessions__duration_s"), 0.0),
            tokens_total=Coalesce(Sum("sessions__total_tokens"), 0),
            cost_total_usd=Sum("sessions__cost_usd"),
            cache_hits_total=Coalesce(Sum("sessions__cache_hits"), 0),
            cache_misses_total=Coalesce(Sum("sessions__cache_misses"), 0),
            first_started_at=Min("sessions__started_at"),
            last_started_at=Max("sessions__started_at"),
        )
        .order_by("code")
    )


def episode_page(
    qs: QuerySet[Episode], *, cursor: str | None, limit: int
) -> tuple[list[Episode], str | None]:
    if cursor:
        qs = qs.filter(code__gt=_decode(cursor))
    rows = list(qs[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], _encode(rows[limit - 1].code)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("the cursor is not one this API issued") from None
    # Cursors carry codes and times, never control characters (PostgreSQL refuses NUL).
    if not text or not text.isprintable():
        raise InvalidCursor("the cursor is not one this API issued")
    return text


def _decode_session_cursor(cursor: str) -> tuple[datetime, int]:
    started, _, pk = _decode(cursor).rpartition("|")
    try:
        moment, row = datetime.fromisoformat(started), int(pk)
    except ValueError:
        raise InvalidCursor("the cursor is not one this API issued") from None
    if moment.tzinfo is None or not 0 < row < 2**63:
        raise InvalidCursor("the cursor is not one this API issued")
    return moment, row


OTLP_REPORT_TOP_N = 20


def otlp_report(session: Session, *, top: int = OTLP_REPORT_TOP_N) -> dict | None:
    """What the OTLP receiver made of the session's spans, or None if none came by OTLP.

    ``ignored_attributes`` lists the ``top`` attribute names the mapping neither read nor
    kept as metadata, most frequent first, with the number of spans (or resources) that
    carried them.
    """
    report = OtlpReport.objects.filter(session=session).first()
    if report is None:
        return None
    ranked = sorted(report.ignored_attributes.items(), key=lambda item: (-item[1], item[0]))
    return {
        "spans_received": report.spans_received,
        "spans_rejected": report.spans_rejected,
        "spans_stored": Operation.objects.filter(session=session).count(),
        # OTLP calls carry their own span's id as operation id
        "spans_mapped_to_calls": ApiCall.objects.filter(
            session=session, operation_client_id=F("client_id")
        ).count(),
        "ignored_attributes": [{"name": name, "spans": n} for name, n in ranked[:top]],
        "ignored_attribute_names": len(ranked),
    }
