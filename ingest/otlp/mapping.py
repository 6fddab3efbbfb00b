"""One session's spans into schema-v1 operations and API calls.

Every value is brought within schema v1's limits here (lengths, counts, times, metadata
size), so the rows are not validated a second time: they are plain slotted dataclasses
with exactly the fields of ``OperationIn`` and ``ApiCallIn``, which is all that
``ingest.services`` and ``ingest.bulk`` read. At tens of thousands of spans a second,
building pydantic models (even with ``model_construct``) would cost a fifth of the
request. ``tests/test_otlp_mapping.py`` checks that the fields match the schemas and that
what this builds passes schema-v1 validation.
"""

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.otlp import conventions as names
from ingest.otlp import genai
from ingest.otlp.spans import STATUS_ERROR, Span
from ingest.schemas import MAX_ERROR_CHARS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DURATION_NS = 10**9 * 10**9  # schema v1's ceiling for a duration, 10^9 s
MAX_METADATA_KEYS = 32
MAX_METADATA_VALUE_CHARS = 256
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_INDEX = re.compile(r"\.\d+(?=\.|$)")
WRONG_TYPE = " (unreadable value)"


@dataclass(slots=True)
class OperationRow:
    """The fields of ``schemas.OperationIn``."""

    id: str
    parent_id: str | None
    name: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    success: bool | None
    error: str | None
    metadata: dict[str, Any]
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass(slots=True)
class ApiCallRow:
    """The fields of ``schemas.ApiCallIn``."""

    id: str
    operation_id: str | None
    provider: str | None
    model: str | None
    at: datetime | None
    latency_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    total_tokens: int | None
    cost_usd: float | None
    prompt_hash: str | None = None
    error: bool = False
    error_message: str | None = None
    streamed: bool = False
    time_to_first_token_s: float | None = None
    attempts: int | None = None


@dataclass
class Draft:
    """What one request brings to one session, before it meets what is stored."""

    operations: list[OperationRow] = field(default_factory=list)
    api_calls: list[ApiCallRow] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)  # episode, workflow, release, ...
    started_at: datetime | None = None
    ended_at: datetime | None = None
    has_root: bool = False
    root_failed: bool = False
    received: int = 0
    rejected: list[str] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)


def draft(spans: list[Span]) -> Draft:
    result = Draft(received=len(spans))
    resources_seen: set[int] = set()
    for span in spans:
        if id(span.resource) not in resources_seen:
            resources_seen.add(id(span.resource))
            _note_resource(span, result)
        try:
            _add_span(span, result)
        except ValueError as exc:
            result.rejected.append(f"span {span.span_id}: {exc}")
    return result


def _add_span(span: Span, result: Draft) -> None:
    started_at, ended_at, duration_s = _times(span)
    failed = span.status_code == STATUS_ERROR
    error = _error_text(span) if failed else None
    attributes = span.attributes
    bad: list[str] = list(span.unreadable)
    operation = OperationRow(
        span.span_id, span.parent_id, span.name[:200] or "(unnamed span)", started_at,
        ended_at, duration_s, not failed, error, _metadata(attributes, result.ignored),
    )
    result.operations.append(operation)
    if genai.is_model_call(attributes):
        result.api_calls.append(_api_call(span, operation, bad))
    if bad:
        result.ignored.update(f"{_fold(name)}{WRONG_TYPE}" for name in bad)
    if len(result.fields) < len(_FIELDS):
        _note_session_fields(span, result)
    if span.parent_id is None:
        result.has_root = True
        result.root_failed = result.root_failed or failed
    if result.started_at is None or started_at < result.started_at:
        result.started_at = started_at
    end = ended_at or started_at
    if result.ended_at is None or end > result.ended_at:
        result.ended_at = end


def _times(span: Span) -> tuple[datetime, datetime | None, float | None]:
    if span.start_ns <= 0:
        raise ValueError("it has no start time")
    started_at = EPOCH + timedelta(microseconds=span.start_ns // 1000)
    if span.end_ns == 0:  # never ended: stored as still running
        return started_at, None, None
    elapsed = span.end_ns - span.start_ns
    if elapsed < 0:
        raise ValueError("it ends before it starts")
    if elapsed > MAX_DURATION_NS:
        raise ValueError("it lasts longer than 10^9 seconds")
    return started_at, EPOCH + timedelta(microseconds=span.end_ns // 1000), elapsed / 1e9


def _error_text(span: Span) -> str | None:
    if span.status_message:
        return span.status_message[:MAX_ERROR_CHARS]
    for event in span.events:
        if event.name == "exception":
            kind = event.attributes.get("exception.type")
            message = event.attributes.get("exception.message")
            text = ": ".join(str(part) for part in (kind, message) if part is not None)
            return text[:MAX_ERROR_CHARS] or None
    return None


def _api_call(span: Span, operation: OperationRow, bad: list[str]) -> ApiCallRow:
    attributes = span.attributes
    usage = genai.usage(attributes, bad)
    return ApiCallRow(
        span.span_id, span.span_id, genai.provider(attributes), genai.model(attributes),
        operation.started_at, operation.duration_s, usage.prompt_tokens,
        usage.completion_tokens, usage.cached_tokens, usage.cache_write_tokens,
        usage.cache_write_1h_tokens, usage.reasoning_tokens, usage.total_tokens,
        usage.cost_usd, error=not operation.success, error_message=operation.error,
        streamed=genai.first(attributes, names.STREAMED) is True,
    )


_READ, _KEEPABLE, _IGNORED = 0, 1, 2
_KEY_KINDS: dict[str, int] = {}  # what each attribute name is, decided once per name
_KEY_KINDS_MAX = 10_000  # a bound, whatever names senders make up


def _key_kind(key: str) -> int:
    kind = _KEY_KINDS.get(key)
    if kind is None:
        if key in names.CONSUMED:
            kind = _READ
        elif len(key) <= 200 and not key.startswith(names.CONTENT_PREFIXES):
            kind = _KEEPABLE
        else:
            kind = _IGNORED
        if len(_KEY_KINDS) < _KEY_KINDS_MAX:
            _KEY_KINDS[key] = kind
    return kind


def _metadata(attributes: dict[str, Any], ignored: Counter) -> dict[str, Any]:
    """Short scalar attributes the mapping does not read, within schema v1's bounds."""
    kept: dict[str, Any] = {}
    for key, value in attributes.items():
        kind = _key_kind(key)
        if kind == _READ:
            continue
        if kind == _KEEPABLE and len(kept) < MAX_METADATA_KEYS and _storable(value):
            kept[key] = value
        else:
            ignored[_fold(key)] += 1
    return kept


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_METADATA_VALUE_CHARS
    if isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(isinstance(item, str | int | float | bool) for item in value) and len(
            json.dumps(value)) <= MAX_METADATA_VALUE_CHARS
    return False


def _fold(name: str) -> str:
    # gen_ai.prompt.0.content and gen_ai.prompt.1.content are one name in the report
    return _INDEX.sub(".N", name)[:200]


def _note_resource(span: Span, result: Draft) -> None:
    resource = span.resource
    for key in resource.attributes:
        if key not in names.SESSION_FIELDS:
            result.ignored[f"resource {_fold(key)}"] += 1
    result.ignored.update(f"resource {_fold(key)}{WRONG_TYPE}" for key in resource.unreadable)


_FIELDS = {
    "episode": (names.EPISODE, 128), "workflow": (names.WORKFLOW, 128),
    "release": (names.RELEASE, 128), "environment": (names.ENVIRONMENT, 64),
    "host": (names.HOST, 255),
}


def _note_session_fields(span: Span, result: Draft) -> None:
    """The first span that names a field sets it; a span attribute outranks the resource's."""
    for field_name, (keys, max_chars) in _FIELDS.items():
        if field_name in result.fields:
            continue
        value = _first_of_span(span, keys)
        if not isinstance(value, str):
            continue
        value = value.strip()[:max_chars]
        if field_name == "episode" and not _SLUG.match(value):
            result.ignored[f"{keys[0]}{WRONG_TYPE}"] += 1
            continue
        if value:
            result.fields[field_name] = value


def _first_of_span(span: Span, keys: tuple[str, ...]) -> Any:
    for key in keys:
        for attributes in (span.attributes, span.resource.attributes):
            value = attributes.get(key)
            if value is not None:
                return value
    return None


def named_session(span: Span) -> str | None:
    """The first usable session id among the span's and its resource's attributes.

    Names are tried in order (perfmon.session.id, session.id, gen_ai.conversation.id),
    each on the span before its resource; a value that is no usable id is passed over.
    """
    for key in names.SESSION_ID:
        for attributes in (span.attributes, span.resource.attributes):
            value = attributes.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str) and len(value) <= 128 and _SLUG.match(value):
                return value
    return None
