"""The receiver's own view of a span: what both wire encodings decode into."""

from dataclasses import dataclass, field
from typing import Any

STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


@dataclass(slots=True)
class Resource:
    attributes: dict[str, Any]
    # names whose values could not be read (wrong AnyValue type, say)
    unreadable: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    name: str
    attributes: dict[str, Any]


@dataclass(slots=True)
class Span:
    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[Event]
    resource: Resource
    unreadable: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rejected:
    """A span that could not be read at all; counted in the answer's partial_success."""

    reason: str
    trace_id: str | None = None


@dataclass(slots=True)
class Decoded:
    spans: list[Span]
    rejected: list[Rejected]
