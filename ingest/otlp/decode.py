"""ExportTraceServiceRequest bodies, protobuf or OTLP JSON, into ``spans.Span`` objects.

A body that cannot be read at all raises ``Undecodable`` (the view answers 400). A span
that cannot be read (bad ids, times that are no times) is rejected on its own and the
others go on; an attribute whose value has the wrong type is dropped and named in the
span's ``unreadable`` list, so the session's report can say so.
"""

import base64
import binascii
import json
import math
import re
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.otlp.spans import Decoded, Event, Rejected, Resource, Span

MAX_NS = 2**64 - 1  # fixed64 on the wire
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_NO_VALUE = object()


class Undecodable(ValueError):
    pass


class BadSpan(ValueError):
    pass


# --- protobuf ------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> Decoded:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise Undecodable(f"the body is not an ExportTraceServiceRequest: {exc}") from None
    decoded = Decoded(spans=[], rejected=[])
    for resource_spans in request.resource_spans:
        resource = Resource(attributes={})
        resource.attributes = _pb_attributes(resource_spans.resource.attributes,
                                             resource.unreadable)
        for scope_spans in resource_spans.scope_spans:
            for pb_span in scope_spans.spans:
                try:
                    decoded.spans.append(_pb_span(pb_span, resource))
                except BadSpan as exc:
                    decoded.rejected.append(Rejected(str(exc), _hex_or_none(pb_span.trace_id)))
    return decoded


def _pb_span(pb: Any, resource: Resource) -> Span:
    unreadable: list[str] = []
    status = pb.status
    return Span(
        trace_id=_pb_id(pb.trace_id, 16, "trace id"),
        span_id=_pb_id(pb.span_id, 8, "span id"),
        parent_id=_pb_id(pb.parent_span_id, 8, "parent span id") if pb.parent_span_id else None,
        name=pb.name,
        start_ns=pb.start_time_unix_nano,
        end_ns=pb.end_time_unix_nano,
        status_code=status.code,
        status_message=status.message,
        attributes=_pb_attributes(pb.attributes, unreadable),
        events=[Event(e.name, _pb_attributes(e.attributes, unreadable))
                for e in pb.events] if pb.events else [],
        resource=resource,
        unreadable=unreadable,
    )


def _pb_id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size or not any(raw):
        raise BadSpan(f"the {what} is not {size} bytes, or is all zero")
    return raw.hex()


def _hex_or_none(raw: bytes) -> str | None:
    return raw.hex() if len(raw) == 16 and any(raw) else None


_SCALARS = ("string_value", "int_value", "bool_value")


def _pb_attributes(pairs: Any, unreadable: list[str]) -> dict[str, Any]:
    # The hot loop of a protobuf export: the common scalar kinds are read inline.
    attributes = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind in _SCALARS:
            attributes[pair.key] = getattr(value, kind)
            continue
        converted = _pb_value(value, kind)
        if converted is _NO_VALUE:
            unreadable.append(pair.key)
        elif converted is not None:
            attributes[pair.key] = converted
    return attributes


def _pb_value(value: Any, kind: str | None) -> Any:
    if kind is None:
        return None
    if kind == "array_value":
        items = [_pb_value(v, v.WhichOneof("value")) for v in value.array_value.values]
        return _NO_VALUE if _NO_VALUE in items else items
    if kind == "kvlist_value":
        items = {kv.key: _pb_value(kv.value, kv.value.WhichOneof("value"))
                 for kv in value.kvlist_value.values}
        return _NO_VALUE if _NO_VALUE in items.values() else items
    if kind == "bytes_value":
        return value.bytes_value.hex()
    scalar = getattr(value, kind)
    if kind == "double_value" and not math.isfinite(scalar):
        return _NO_VALUE  # NaN and infinities are no measurement and no JSON
    return scalar


# --- OTLP JSON -----------------------------------------------------------------------


def decode_json(body: bytes) -> Decoded:
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise Undecodable("the body is not an ExportTraceServiceRequest object")
    resource_spans = _field(document, "resourceSpans", "resource_spans", default=[])
    if not isinstance(resource_spans, list):
        raise Undecodable("resourceSpans is not a list")
    decoded = Decoded(spans=[], rejected=[])
    for item in resource_spans:
        _decode_resource_spans(item, decoded)
    return decoded


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode_resource_spans(item: Any, decoded: Decoded) -> None:
    if not isinstance(item, dict):
        decoded.rejected.append(Rejected("a resourceSpans entry is not an object"))
        return
    resource = Resource(attributes={})
    raw_resource = _field(item, "resource", default={})
    raw_attributes = _field(raw_resource, "attributes", default=[]) if isinstance(
        raw_resource, dict) else []
    resource.attributes = _json_attributes(raw_attributes, resource.unreadable)
    for scope_spans in _list_field(item, "scopeSpans", "scope_spans"):
        for raw_span in _list_field(scope_spans, "spans"):
            try:
                decoded.spans.append(_json_span(raw_span, resource))
            except BadSpan as exc:
                trace = _field(raw_span, "traceId", "trace_id") if isinstance(
                    raw_span, dict) else None
                decoded.rejected.append(Rejected(str(exc), _json_id_or_none(trace)))


def _json_span(raw: Any, resource: Resource) -> Span:
    if not isinstance(raw, dict):
        raise BadSpan("a span is not an object")
    unreadable: list[str] = []
    status = _field(raw, "status", default={})
    if not isinstance(status, dict):
        status = {}
        unreadable.append("status")
    parent = _field(raw, "parentSpanId", "parent_span_id", default="")
    name = _field(raw, "name", default="")
    message = _field(status, "message", default="")
    return Span(
        trace_id=_json_id(_field(raw, "traceId", "trace_id"), 16, "trace id"),
        span_id=_json_id(_field(raw, "spanId", "span_id"), 8, "span id"),
        parent_id=_json_id(parent, 8, "parent span id") if parent else None,
        name=name if isinstance(name, str) else "",
        start_ns=_json_ns(_field(raw, "startTimeUnixNano", "start_time_unix_nano"), "start"),
        end_ns=_json_ns(_field(raw, "endTimeUnixNano", "end_time_unix_nano", default=0), "end"),
        status_code=_status_code(_field(status, "code", default=0)),
        status_message=message if isinstance(message, str) else "",
        attributes=_json_attributes(_field(raw, "attributes", default=[]), unreadable),
        events=_json_events(_field(raw, "events", default=[]), unreadable),
        resource=resource,
        unreadable=unreadable,
    )


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    # OTLP JSON uses lowerCamelCase; proto3 JSON readers also take the original names.
    for name in names:
        if name in obj:
            return obj[name]
    return default


def _list_field(obj: Any, *names: str) -> list:
    value = _field(obj, *names, default=[]) if isinstance(obj, dict) else []
    return value if isinstance(value, list) else []


def _json_id(value: Any, size: int, what: str) -> str:
    raw = _id_bytes(value, size)
    if raw is None or not any(raw):
        raise BadSpan(f"the {what} is not {size * 2} hex digits, or is all zero")
    return raw.hex()


def _id_bytes(value: Any, size: int) -> bytes | None:
    if not isinstance(value, str):
        return None
    if len(value) == size * 2 and _HEX.match(value):
        return bytes.fromhex(value)
    try:  # proto3's own JSON mapping writes bytes as base64; take that too
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _json_id_or_none(value: Any) -> str | None:
    raw = _id_bytes(value, 16)
    return raw.hex() if raw and any(raw) else None


def _json_ns(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NS:
        raise BadSpan(f"the {what} time is not a count of nanoseconds")
    return value


_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _status_code(value: Any) -> int:
    if isinstance(value, str):
        return _STATUS_NAMES.get(value, 0)
    return value if isinstance(value, int) and value in (0, 1, 2) else 0


def _json_events(raw: Any, unreadable: list[str]) -> list[Event]:
    if not isinstance(raw, list):
        return []
    events = []
    for item in raw:
        if isinstance(item, dict):
            name = _field(item, "name", default="")
            attributes = _json_attributes(_field(item, "attributes", default=[]), unreadable)
            events.append(Event(name if isinstance(name, str) else "", attributes))
    return events


def _json_attributes(raw: Any, unreadable: list[str]) -> dict[str, Any]:
    if not isinstance(raw, list):
        return {}
    attributes = {}
    for pair in raw:
        key = pair.get("key") if isinstance(pair, dict) else None
        if not isinstance(key, str):
            unreadable.append("(attribute without a key)")
            continue
        value = _json_value(pair.get("value"))
        if value is _NO_VALUE:
            unreadable.append(key)
        elif value is not None:
            attributes[key] = value
    return attributes


def _json_value(raw: Any, depth: int = 0) -> Any:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or depth > 8:
        return _NO_VALUE
    (kind, value), = raw.items()
    reader = _JSON_READERS.get(kind)
    return _NO_VALUE if reader is None else reader(value, depth)


def _string(value: Any, depth: int) -> Any:
    return value if isinstance(value, str) else _NO_VALUE


def _bool(value: Any, depth: int) -> Any:
    return value if isinstance(value, bool) else _NO_VALUE


def _int(value: Any, depth: int) -> Any:
    # int64 travels as a JSON string (or, from lenient writers, as a number)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return _NO_VALUE
    return value


def _double(value: Any, depth: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _NO_VALUE  # "NaN", "Infinity" and the like are no measurement
    return float(value)


def _bytes(value: Any, depth: int) -> Any:
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError, TypeError):
        return _NO_VALUE


def _array(value: Any, depth: int) -> Any:
    values = value.get("values", []) if isinstance(value, dict) else None
    if not isinstance(values, list):
        return _NO_VALUE
    items = [_json_value(v, depth + 1) for v in values]
    return _NO_VALUE if _NO_VALUE in items else items


def _kvlist(value: Any, depth: int) -> Any:
    values = value.get("values", []) if isinstance(value, dict) else None
    if not isinstance(values, list):
        return _NO_VALUE
    items = {}
    for pair in values:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            return _NO_VALUE
        items[pair["key"]] = _json_value(pair.get("value"), depth + 1)
    return _NO_VALUE if _NO_VALUE in items.values() else items


_JSON_READERS = {
    "stringValue": _string, "string_value": _string,
    "boolValue": _bool, "bool_value": _bool,
    "intValue": _int, "int_value": _int,
    "doubleValue": _double, "double_value": _double,
    "bytesValue": _bytes, "bytes_value": _bytes,
    "arrayValue": _array, "array_value": _array,
    "kvlistValue": _kvlist, "kvlist_value": _kvlist,
}
