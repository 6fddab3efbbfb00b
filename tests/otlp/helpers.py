"""Builders for OTLP tests: hand-made OTLP JSON, a tracer provider exporting to perfmon,
and a minimal OpenAI-compatible chat stub on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

T0_NS = 1_795_000_000 * 10**9  # 2026-11-18, within every shipped price's validity


def any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 as a JSON string, as the OTLP mapping says
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": value}


def attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in values.items()]


def span(span_id: str, *, trace_id: str = "a" * 32, parent: str | None = None,
         name: str = "step", start_s: float = 0.0, end_s: float = 1.0,
         attrs: dict[str, Any] | None = None, error: str | None = None,
         **raw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id, "name": name,
        "startTimeUnixNano": str(T0_NS + int(start_s * 1e9)),
        "endTimeUnixNano": str(T0_NS + int(end_s * 1e9)),
        "attributes": attributes(attrs or {}),
        "status": {"code": 2, "message": error} if error else {},
    }
    if parent:
        body["parentSpanId"] = parent
    body.update(raw)
    return body


def export_request(spans: list[dict[str, Any]],
                   resource: dict[str, Any] | None = None) -> dict[str, Any]:
    resource = {"service.name": "script_generation", **(resource or {})}
    return {"resourceSpans": [{
        "resource": {"attributes": attributes(resource)},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}],
    }]}


def span_id(n: int) -> str:
    return f"{n:016x}"


class ChatStub:
    """Answers POST /v1/chat/completions with a fixed completion and usage, cached tokens
    included, the way OpenAI's API reports them."""

    def __init__(self, *, model: str, prompt_tokens: int, cached_tokens: int,
                 completion_tokens: int) -> None:
        self.answer = {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1_795_000_000,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "INT. DINER - NIGHT"}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached_tokens}},
        }
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests += 1
                body = json.dumps(stub.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ChatStub:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def ensure_price(provider: str, model: str, inp: str, out: str, cached: str,
                 write: str | None = None) -> None:
    """The shipped price row (transactional tests flush what the data migration seeded)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from metrics.models import ModelPrice

    ModelPrice.objects.get_or_create(
        provider=provider, model=model, valid_from=datetime(2025, 1, 1, tzinfo=UTC),
        defaults={"input_per_mtok": Decimal(inp), "output_per_mtok": Decimal(out),
                  "cached_input_per_mtok": Decimal(cached),
                  "cache_write_per_mtok": Decimal(write) if write else None,
                  "source": "tests"},
    )
