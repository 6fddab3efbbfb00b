"""OTLP/HTTP answers, in the encoding the exporter sent its request in.

Success is an ExportTraceServiceResponse (with ``partial_success`` when spans were
rejected); a failure carries a ``google.rpc.Status``, as the OTLP specification asks.
"""

import json
import math

from django.http import HttpResponse
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# google.rpc.Code of each HTTP status we answer with
_RPC_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}


def exported(encoding: str, *, rejected: int = 0, message: str = "") -> HttpResponse:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if encoding == PROTOBUF:
        return HttpResponse(response.SerializeToString(), content_type=PROTOBUF)
    return HttpResponse(json_format.MessageToJson(response, indent=None), content_type=JSON)


def failure(encoding: str, status: int, message: str, *,
            retry_after_s: float | None = None) -> HttpResponse:
    code = _RPC_CODES[status]
    if encoding == PROTOBUF:
        response = HttpResponse(_rpc_status(code, message), content_type=PROTOBUF, status=status)
    else:
        body = json.dumps({"code": code, "message": message})
        response = HttpResponse(body, content_type=JSON, status=status)
    if retry_after_s is not None:
        response["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return response


def _rpc_status(code: int, message: str) -> bytes:
    # google.rpc.Status is two fields here (code = 1, message = 2); encoding them by hand
    # spares the server a dependency on the googleapis protos for one tiny message.
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
