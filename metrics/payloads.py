"""A stored session as a schema-v1 payload: what the SDK sent, merged, ready to send again.

The ingest API accepts the result as it is, so an export can be re-imported elsewhere.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from metrics.models import ApiCall, Operation, Session

SCHEMA_VERSION = 1


def session_payload(session: Session) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "session": _session_fields(session),
        "operations": list(_operations(session)),
        "api_calls": list(_api_calls(session)),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _session_fields(session: Session) -> dict[str, Any]:
    fields = {
        "id": session.external_id,
        "episode": session.episode.code if session.episode_id else None,
        "workflow": session.workflow or None,
        "release": session.release or None,
        "environment": session.environment or None,
        "host": session.host or None,
        "status": session.status,
        "started_at": _iso(session.started_at),
        "ended_at": _iso(session.ended_at),
        "cache": {
            "hits": session.cache_hits,
            "misses": session.cache_misses,
            "by_name": session.cache_by_name,
        },
        "counters": session.counters,
        "tags": session.tags,
        "metadata": session.metadata,
    }
    return {key: value for key, value in fields.items() if value is not None}


# Wire name -> column, in the order the wire lists them.
OPERATION_FIELDS = {
    "id": "client_id", "parent_id": "parent_client_id", "name": "name",
    "started_at": "started_at", "ended_at": "ended_at", "duration_s": "duration_s",
    "success": "success", "error": "error", "metadata": "metadata",
    "cache_hits": "cache_hits", "cache_misses": "cache_misses",
}
API_CALL_FIELDS = {
    "id": "client_id", "operation_id": "operation_client_id", "provider": "provider",
    "model": "model", "at": "at", "latency_s": "latency_s", "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens", "cached_tokens": "cached_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "cache_write_1h_tokens": "cache_write_1h_tokens", "reasoning_tokens": "reasoning_tokens",
    "total_tokens": "total_tokens",
    "cost_usd": "cost_usd", "cost_source": "cost_source", "prompt_hash": "prompt_hash",
    "error": "error", "error_message": "error_message", "streamed": "streamed",
    "time_to_first_token_s": "time_to_first_token_s", "attempts": "attempts",
}


def operation_records(session: Session) -> Iterator[dict[str, Any]]:
    """The session's operations under their wire names, values as stored, start order."""
    rows = Operation.objects.filter(session=session).order_by("started_at", "pk")
    yield from _records(rows, OPERATION_FIELDS)


def api_call_records(session: Session) -> Iterator[dict[str, Any]]:
    """The session's API calls under their wire names (plus ``cost_source``), time order."""
    rows = ApiCall.objects.filter(session=session).order_by("at", "pk")
    yield from _records(rows, API_CALL_FIELDS)


def _records(rows, fields: dict[str, str]) -> Iterator[dict[str, Any]]:
    keys = tuple(fields)
    for row in rows.values_list(*fields.values()).iterator(chunk_size=5000):
        yield dict(zip(keys, row, strict=True))


def _operations(session: Session) -> Iterator[dict[str, Any]]:
    for op in operation_records(session):
        yield {**op, "started_at": _iso(op["started_at"]), "ended_at": _iso(op["ended_at"])}


def _api_calls(session: Session) -> Iterator[dict[str, Any]]:
    for call in api_call_records(session):
        source = call.pop("cost_source")
        yield {
            **call,
            "provider": call["provider"] or None,
            "model": call["model"] or None,
            "at": _iso(call["at"]),
            # Only a client's own cost travels: a server price is recomputed on import.
            "cost_usd": float(call["cost_usd"]) if source == ApiCall.CostSource.CLIENT
            else None,
        }
