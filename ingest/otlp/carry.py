"""A session that waited under its trace id, read back as schema-v1 rows and removed."""

from dataclasses import dataclass, field
from datetime import datetime

from ingest.otlp.mapping import ApiCallRow, OperationRow
from metrics.analysis import rollups
from metrics.episode_runs import refresh_latest_runs
from metrics.models import ApiCall, Operation, OtlpReport, Session

_OPERATION_FIELDS = (
    "client_id", "parent_client_id", "name", "started_at", "ended_at", "duration_s",
    "success", "error", "metadata", "cache_hits", "cache_misses",
)
_CALL_FIELDS = (
    "client_id", "operation_client_id", "provider", "model", "at", "latency_s",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
    "cache_write_1h_tokens", "reasoning_tokens", "total_tokens", "cost_usd", "cost_source",
    "prompt_hash", "error", "error_message", "streamed", "time_to_first_token_s", "attempts",
)


@dataclass
class Carried:
    operations: list[OperationRow]
    api_calls: list[ApiCallRow]
    started_at: datetime
    ended_at: datetime | None
    status: str
    fields: dict[str, str | None]
    received: int = 0
    rejected: int = 0
    ignored: dict[str, int] = field(default_factory=dict)


def carry_and_retire(waiting: Session) -> Carried:
    """Read ``waiting``'s rows, then delete it and take its figures out of the rollups.

    The caller holds the analysis lock; the row lock taken here keeps analysis off it.
    """
    waiting = (
        Session.objects.select_for_update(of=("self",)).select_related("episode")
        .get(pk=waiting.pk)
    )
    report = OtlpReport.objects.filter(session=waiting).first()
    carried = Carried(
        operations=[_operation(row) for row in
                    Operation.objects.filter(session=waiting).values(*_OPERATION_FIELDS)],
        api_calls=[_call(row) for row in
                   ApiCall.objects.filter(session=waiting).values(*_CALL_FIELDS)],
        started_at=waiting.started_at,
        ended_at=waiting.ended_at,
        status=waiting.status,
        fields={"episode": waiting.episode.code if waiting.episode else None,
                "workflow": waiting.workflow, "release": waiting.release,
                "environment": waiting.environment, "host": waiting.host},
        received=report.spans_received if report else 0,
        rejected=report.spans_rejected if report else 0,
        ignored=report.ignored_attributes if report else {},
    )
    _retire(waiting)
    return carried


def _retire(waiting: Session) -> None:
    ApiCall.objects.filter(session=waiting).delete()
    if waiting.rollup_day is not None:  # analysed: its lines are in the rollups
        rollups.replace_session_figures(waiting, [])
    waiting.delete()
    refresh_latest_runs([waiting.episode_id])


def _operation(row: dict) -> OperationRow:
    return OperationRow(
        id=row.pop("client_id"), parent_id=row.pop("parent_client_id"), **row
    )


def _call(row: dict) -> ApiCallRow:
    client_priced = row.pop("cost_source") == ApiCall.CostSource.CLIENT
    cost = row.pop("cost_usd")
    return ApiCallRow(
        id=row.pop("client_id"), operation_id=row.pop("operation_client_id"),
        cost_usd=float(cost) if client_priced and cost is not None else None, **row,
    )
