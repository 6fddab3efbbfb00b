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


def _operations(session: Session) -> Iterator[dict[str, Any]]:
    rows = Operation.objects.filter(session=session).order_by("started_at", "pk").values_list(
        "client_id", "parent_client_id", "name", "started_at", "ended_at", "duration_s",
        "success", "error", "metadata", "cache_hits", "cache_misses",
    )
    for (op_id, parent_id, name, started, ended, duration, success, error, metadata,
         hits, misses) in rows.iterator(chunk_size=5000):
        yield {
            "id": op_id, "parent_id": parent_id, "name": name, "started_at": _iso(started),
            "ended_at": _iso(ended), "duration_s": duration, "success": success,
            "error": error, "metadata": metadata, "cache_hits": hits, "cache_misses": misses,
        }


def _api_calls(session: Session) -> Iterator[dict[str, Any]]:
    rows = ApiCall.objects.filter(session=session).order_by("at", "pk").values_list(
        "client_id", "operation_client_id", "provider", "model", "at", "latency_s",
        "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
        "total_tokens", "cost_usd", "cost_source", "prompt_hash", "error", "error_message",
    )
    for (call_id, op_id, provider, model, at, latency, prompt, completion, cached, written,
         total, cost, source, prompt_hash, error, message) in rows.iterator(chunk_size=5000):
        yield {
            "id": call_id, "operation_id": op_id, "provider": provider or None,
            "model": model or None, "at": _iso(at), "latency_s": latency,
            "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached,
            "cache_write_tokens": written, "total_tokens": total,
            # Only a client's own cost travels: a server price is recomputed on import.
            "cost_usd": float(cost) if source == ApiCall.CostSource.CLIENT else None,
            "prompt_hash": prompt_hash, "error": error, "error_message": message,
        }
