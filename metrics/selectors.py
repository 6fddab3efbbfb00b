"""Reads: querysets and aggregates for the API and the dashboard, computed by the database."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from metrics.models import ApiCall, Episode, Operation, OtlpReport, Project, Session

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
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("the cursor is not one this API issued") from None


def _decode_session_cursor(cursor: str) -> tuple[datetime, int]:
    started, _, pk = _decode(cursor).rpartition("|")
    try:
        return datetime.fromisoformat(started), int(pk)
    except ValueError:
        raise InvalidCursor("the cursor is not one this API issued") from None


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
