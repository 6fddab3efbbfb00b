"""A stored session as a schema-v1 payload: what the SDK sent, merged, ready to send again.

The ingest API accepts the result as it is, so an export can be re-imported elsewhere.
"""

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Q

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


# --- pages of a session's rows, for the API ---------------------------------------------

DEFAULT_PAGE_ROWS = 1000
MAX_PAGE_ROWS = 5000


class InvalidRowCursor(ValueError):
    pass


def operation_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the session's operations in start order, and the next page's cursor."""
    rows = Operation.objects.filter(session=session).order_by("started_at", "pk")
    if cursor:
        started, pk = _decode_row_cursor(cursor)
        if started is None:
            raise InvalidRowCursor("the cursor is not one this API issued")
        rows = rows.filter(Q(started_at__gt=started) | Q(started_at=started, pk__gt=pk))
    page = list(rows.values_list("pk", *OPERATION_FIELDS.values())[: limit + 1])
    more, page = len(page) > limit, page[:limit]
    records = [dict(zip(OPERATION_FIELDS, row[1:], strict=True)) for row in page]
    if not more:
        return records, None
    return records, _encode_row_cursor(page[-1][0], records[-1]["started_at"])


def api_call_page(
    session: Session, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the session's API calls in the order they were stored."""
    rows = ApiCall.objects.filter(session=session).order_by("pk")
    if cursor:
        rows = rows.filter(pk__gt=_decode_row_cursor(cursor)[1])
    page = list(rows.values_list("pk", *API_CALL_FIELDS.values())[: limit + 1])
    more, page = len(page) > limit, page[:limit]
    records = [dict(zip(API_CALL_FIELDS, row[1:], strict=True)) for row in page]
    return records, _encode_row_cursor(page[-1][0], None) if more else None


def _encode_row_cursor(pk: int, moment: datetime | None) -> str:
    text = f"{moment.isoformat() if moment else ''}|{pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_row_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, pk = text.rpartition("|")
        started = datetime.fromisoformat(moment) if moment else None
        row = int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRowCursor("the cursor is not one this API issued") from None
    if not 0 < row < 2**63 or (started is not None and started.tzinfo is None):
        raise InvalidRowCursor("the cursor is not one this API issued")
    return started, row
