"""Schema v1 as the SDK writes it: field names, the server's limits, and fitting values into
them, in one place.

Payloads are shaped to fit, because one value out of bounds gets the whole session rejected
(and one oversized metadata field must never cost the whole session). The limits mirror the
server's ``ingest/schemas.py``; a test compares the two.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from typing import Any

log = logging.getLogger("perfmon")

SCHEMA_VERSION = 1

# -- field names -------------------------------------------------------------------------------

PAYLOAD_FIELDS = ("schema_version", "session", "operations", "api_calls")
SESSION_FIELDS = (
    "id", "episode", "workflow", "release", "environment", "host", "status", "started_at",
    "ended_at", "cache", "counters", "tags", "metadata", "sdk", "sequence",
    "peak_memory_bytes", "part",
)
OPERATION_FIELDS = (
    "id", "parent_id", "name", "started_at", "ended_at", "duration_s", "success", "error",
    "metadata", "cache_hits", "cache_misses",
)
API_CALL_FIELDS = (
    "id", "operation_id", "provider", "model", "at", "latency_s", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_write_tokens", "cache_write_1h_tokens",
    "reasoning_tokens", "total_tokens", "cost_usd", "prompt_hash", "error", "error_message",
    "streamed", "time_to_first_token_s", "attempts",
)
#: Sent even when null: an unknown operation and an unpriced call mean something.
API_CALL_KEEP_NULL = ("operation_id", "cost_usd")
#: Sent only when they differ from the server's default (older servers never see them).
API_CALL_DEFAULTS: dict[str, Any] = {
    "cache_write_1h_tokens": 0, "reasoning_tokens": 0, "streamed": False,
    "time_to_first_token_s": None, "attempts": None,
}
#: The ``session.sdk`` health report (see ``ingest.schemas.SdkReportIn``).
SDK_REPORT_FIELDS = (
    "version", "sent", "retried", "spooled", "resent", "dropped", "rejected", "quarantined",
    "spool_errors", "operations", "recording_overhead_s", "fitted",
)

# -- limits ------------------------------------------------------------------------------------

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
SLUG_MAX = 128
NAME_MAX = 200  # operation names, counter and cache names, tags, metadata keys
TEXT_MAX = 255
MAX_KEYS = 100
MAX_TAGS = 50
MAX_DEPTH = 8  # the metadata object itself is level 1
MAX_ERROR_CHARS = 2000  # the server takes 10,000; an error message rarely needs more
MAX_INT = 2**63
OPERATION_METADATA_BYTES = 16 * 1024
SESSION_METADATA_BYTES = 64 * 1024
MAX_OPERATIONS = 100_000  # per request
MAX_API_CALLS = 50_000
#: Session text fields cut to the server's column sizes (the schema itself allows 255).
SESSION_TEXT_LIMITS = (("workflow", 128), ("release", 128), ("environment", 64), ("host", 255))
PROVIDER_MAX = 64
MODEL_MAX = 128


# -- fitted values -------------------------------------------------------------------------
# Each value replaced by a stand-in or cut to a limit is counted, per thread, so that the
# code building one payload (or recording one call) can tell how many of its values were
# fitted: the session's SDK report says so, and nothing is changed silently.

class _Fits(threading.local):
    n = 0  # a class default: reading it on a new thread raises and catches nothing


_fits = _Fits()


def note_fitted() -> None:
    """Count one value replaced or cut to fit."""
    _fits.n = getattr(_fits, "n", 0) + 1


def fits() -> int:
    """Values fitted so far on this thread (compare two readings)."""
    return getattr(_fits, "n", 0)


def name(value: Any) -> str:
    text = _printable(value)
    if not text or len(text) > NAME_MAX:
        note_fitted()
    return text[:NAME_MAX] or "?"


def text(value: Any, limit: int = TEXT_MAX) -> str | None:
    if value is None:
        return None
    printed = _printable(value)
    if len(printed) > limit:
        note_fitted()
    return printed[:limit]


def mapping(value: dict[Any, Any] | None) -> dict[str, Any]:
    """At most 100 keys of at most 200 characters, as the server requires."""
    if not value:
        return {}
    return {str(k)[:NAME_MAX]: v for k, v in list(value.items())[:MAX_KEYS]}


_MAX_COUNT = 2**53


def count(value: Any) -> int:
    """A token or event count as the server takes it: 0 to 2**53 (bad values become 0)."""
    if type(value) is int and 0 <= value <= _MAX_COUNT:  # the usual case, kept short
        return value
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        note_fitted()
        return 0
    if not 0 <= number <= 2**53:
        note_fitted()
    return min(max(0, number), 2**53)


def check_slug(kind: str, value: str | None) -> None:
    if value is not None and (len(value) > SLUG_MAX or not SLUG.match(value)):
        log.warning("perfmon: %s %r is not a slug (letters, digits, . _ : -, at most %d "
                    "characters); the server will refuse this session", kind, value, SLUG_MAX)


def fit_metadata(meta: dict[Any, Any] | None, max_bytes: int) -> dict[str, Any]:
    """``meta`` with string keys, JSON values, bounded depth and size.

    Values too deep become their ``repr`` (cut short); non-finite floats become strings;
    when the whole is over ``max_bytes``, the largest values are replaced by a note
    saying how big they were, until it fits.
    """
    if not meta:
        return {}
    fitted = {
        str(key)[:NAME_MAX]: _json_value(value, depth=2)
        for key, value in list(meta.items())[:MAX_KEYS]
    }
    if _flat_bound(fitted) <= max_bytes:  # surely fits: no need to measure it
        return fitted
    total = _size(fitted)
    if total <= max_bytes:
        return fitted
    sizes = {key: _size(value) for key, value in fitted.items()}
    for key in sorted(sizes, key=sizes.get, reverse=True):
        if total <= max_bytes:
            break
        note = f"<dropped: {sizes[key]} bytes>"
        note_fitted()
        total -= sizes[key] - _size(note)
        fitted[key] = note
    return fitted


def _json_value(value: Any, *, depth: int) -> Any:
    if isinstance(value, str):
        _count_unencodable(value)
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # past 64 bits the server cannot store it (nor JSON, at 4,300)
        if -MAX_INT < value < MAX_INT:
            return value
        note_fitted()
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        note_fitted()
        return str(value)
    if depth > MAX_DEPTH:
        note_fitted()
        return repr(value)[:200]
    if isinstance(value, dict):
        return {str(k)[:NAME_MAX]: _json_value(v, depth=depth + 1)
                for k, v in list(value.items())[:MAX_KEYS]}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v, depth=depth + 1) for v in value]
    printed = _printable(value)
    if len(printed) > 1000:
        note_fitted()
    return printed[:1000]


def _printable(value: Any) -> str:
    try:
        printed = str(value)
    except Exception:  # a user's __str__ must not cost the session
        note_fitted()
        return f"<unprintable {type(value).__name__}>"
    _count_unencodable(printed)
    return printed


def _count_unencodable(text: str) -> None:
    """A lone surrogate cannot be UTF-8: the encoder will send it as "?" (perfmon._http)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            note_fitted()


# The most bytes one scalar takes in ``_size``'s JSON: 20 characters for an integer below
# 2**63, 24 for the longest float repr; a character of a string at most 6 (an escape).
_SCALAR_BOUND = 24
_CHAR_BOUND = 6


def _flat_bound(fitted: dict[str, Any]) -> int:
    """An upper bound of ``_size(fitted)`` for metadata of plain scalars, found without
    encoding it (most operations' metadata is a few numbers and short strings); a bound
    past any limit when a value is a container."""
    total = 2  # {}
    for key, value in fitted.items():
        kind = type(value)
        if kind is str:
            size = _CHAR_BOUND * len(value) + 2
        elif kind is int or kind is float or kind is bool or value is None:
            size = _SCALAR_BOUND
        else:
            return MAX_INT
        total += _CHAR_BOUND * len(key) + 6 + size  # quotes, ": " and ", "
    return total


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", errors="replace"))
