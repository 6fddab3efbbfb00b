"""A local HTTP server that answers like the OpenAI and Anthropic APIs (standard library only).

It serves ``POST /v1/chat/completions``, ``/v1/responses`` (OpenAI) and ``/v1/messages``
(Anthropic) on 127.0.0.1, as JSON or as a server-sent event stream when the request says
``"stream": true``, in the shapes the providers document (usage with cached tokens,
reasoning tokens and 5-minute / 1-hour cache writes; OpenAI's final usage chunk only when
``stream_options.include_usage`` is set, as the real API does). Failures can be scripted:
a 429 with ``retry-after``, a 500, an overload.

The official clients talk to it unchanged::

    with FakeProvider() as provider:
        client = openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o", messages=[...])

Used by the tests and by the demo (``python -m perfmon.demo``), whose ``respond`` function
decides latency, tokens and errors per request.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Completion", "Failure", "FakeProvider", "ProviderRequest"]

_CREATED = 1_733_000_000  # a fixed "created" time: answers are reproducible


@dataclass
class Completion:
    """A successful answer. ``model`` None answers with the requested model."""

    text: str = "Hello from the fake provider."
    prompt_tokens: int = 12  # every input token, cached and cache writes included
    completion_tokens: int = 6  # reasoning tokens included
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # OpenAI only
    cache_write_5m_tokens: int = 0  # Anthropic only
    cache_write_1h_tokens: int = 0  # Anthropic only
    model: str | None = None
    latency_s: float = 0.0  # before the first byte of the answer
    chunk_delay_s: float = 0.0  # between the events of a stream
    # A stream that breaks off: after this many text deltas the provider sends an error
    # event (as both APIs do when they fail mid-stream) and ends the stream.
    stream_error_after: int | None = None


@dataclass
class Failure:
    """An error answer, in the provider's error shape."""

    status: int = 500
    retry_after_s: float | None = None  # sent as retry-after and retry-after-ms
    message: str | None = None
    latency_s: float = 0.0


@dataclass
class ProviderRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt_text(self) -> str:
        """Every text of the request's messages (and system prompt), joined."""
        parts = [_text_of(self.body.get("system")), _text_of(self.body.get("instructions")),
                 _text_of(self.body.get("input"))]
        parts += [_text_of(m.get("content")) for m in self.body.get("messages") or []
                  if isinstance(m, dict)]
        return "\n".join(part for part in parts if part)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(item.get("text") if isinstance(item, dict) else item)
                         for item in content)
    return ""


Reply = Completion | Failure
Responder = Callable[[ProviderRequest], Reply]


class FakeProvider:
    """The server. Replies come from ``script()`` first (in order), then from ``respond``
    (default: ``self.completion`` for every request)."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.completion = Completion()
        self._respond = respond or (lambda request: self.completion)
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[ProviderRequest] = []
        self._server: ThreadingHTTPServer | None = None

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FakeProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def _next_reply(self, request: ProviderRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        return self._respond(request)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a kept-alive connection (or abandons a stream) is normal here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeProvider
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs

    def setup(self) -> None:
        super().setup()
        # Each event is its own write: without this, Nagle's algorithm and delayed ACKs
        # would hold small writes back for tens of milliseconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        api = _API.get(self.path)
        if api is None:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        request = ProviderRequest(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body if isinstance(body, dict) else {})
        reply = self.owner._next_reply(request)
        time.sleep(reply.latency_s)
        try:
            if isinstance(reply, Failure):
                self._failure(api, reply)
            elif body.get("stream"):
                self._stream(api.events(request, reply))
            else:
                self._json(200, api.answer(request, reply))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up (an abandoned stream)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake{len(self.owner.requests)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _failure(self, api: _Api, failure: Failure) -> None:
        headers = {}
        if failure.retry_after_s is not None:
            headers["retry-after"] = str(math.ceil(failure.retry_after_s))
            # At least 1 ms: the clients ignore a zero and fall back to their own backoff.
            headers["retry-after-ms"] = str(max(1, round(failure.retry_after_s * 1000)))
        self._json(failure.status, api.error(failure), headers)

    def _stream(self, events: Iterator[tuple[str | None, Any, float]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data, delay in events:
            time.sleep(delay)
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            raw = frame.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


# -- the answers, in each API's documented shape -------------------------------------------


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]


def _model(request: ProviderRequest, reply: Completion) -> str:
    return reply.model or str(request.body.get("model") or "unknown")


def _openai_usage(reply: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


def _chat_answer(request: ProviderRequest, reply: Completion) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": _CREATED,
        "model": _model(request, reply), "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{
            "index": 0, "logprobs": None, "finish_reason": "stop",
            "message": {"role": "assistant", "content": reply.text, "refusal": None,
                        "annotations": []},
        }],
        "usage": _openai_usage(reply),
    }


def _chat_events(request: ProviderRequest, reply: Completion) -> Iterator[tuple[Any, Any, float]]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": _CREATED,
            "model": _model(request, reply), "system_fingerprint": "fp_fake",
            "service_tier": "default"}
    usage = bool((request.body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **({"usage": None} if usage else {})}

    yield None, chunk({"role": "assistant", "content": "", "refusal": None}), 0.0
    for n, word in enumerate(_words(reply.text)):
        if n == reply.stream_error_after:
            yield None, {"error": {"message": "The server had an error while processing "
                                   "your request.", "type": "server_error", "param": None,
                                   "code": None}}, 0.0
            return
        yield None, chunk({"content": word}), reply.chunk_delay_s
    yield None, chunk({}, "stop"), 0.0
    if usage:
        yield None, {**base, "choices": [], "usage": _openai_usage(reply)}, 0.0
    yield None, "[DONE]", 0.0


def _openai_error(failure: Failure) -> dict[str, Any]:
    if failure.status == 429:
        return {"error": {"message": failure.message or "Rate limit reached for requests. "
                          "Please try again in 20ms.", "type": "requests", "param": None,
                          "code": "rate_limit_exceeded"}}
    return {"error": {"message": failure.message or "The server had an error while "
                      "processing your request. Sorry about that!", "type": "server_error",
                      "param": None, "code": None}}


def _responses_answer(request: ProviderRequest, reply: Completion) -> dict[str, Any]:
    return {
        "id": "resp_fake", "object": "response", "created_at": _CREATED, "status": "completed",
        "model": _model(request, reply), "error": None, "incomplete_details": None,
        "instructions": request.body.get("instructions"), "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [], "metadata": {}, "temperature": 1.0, "top_p": 1.0,
        "output": [{
            "type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
        }],
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens},
            "output_tokens": reply.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _responses_events(request: ProviderRequest, reply: Completion) -> Iterator[Any]:
    done = _responses_answer(request, reply)
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    yield "response.created", {"type": "response.created", "sequence_number": 0,
                               "response": started}, 0.0
    for n, word in enumerate(_words(reply.text), 1):
        yield "response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": n, "item_id": "msg_fake",
            "output_index": 0, "content_index": 0, "delta": word, "logprobs": [],
        }, reply.chunk_delay_s
    yield "response.completed", {"type": "response.completed", "sequence_number": n + 1,
                                 "response": done}, 0.0


def _anthropic_usage(reply: Completion, output_tokens: int) -> dict[str, Any]:
    written = reply.cache_write_5m_tokens + reply.cache_write_1h_tokens
    return {
        "input_tokens": reply.prompt_tokens - reply.cached_tokens - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": reply.cache_write_5m_tokens,
                           "ephemeral_1h_input_tokens": reply.cache_write_1h_tokens},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message(request: ProviderRequest, reply: Completion, *, done: bool) -> dict[str, Any]:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant",
        "model": _model(request, reply),
        "content": [{"type": "text", "text": reply.text}] if done else [],
        "stop_reason": "end_turn" if done else None, "stop_sequence": None,
        "usage": _anthropic_usage(reply, reply.completion_tokens if done else 1),
    }


def _messages_events(request: ProviderRequest, reply: Completion) -> Iterator[Any]:
    yield "message_start", {"type": "message_start",
                            "message": _message(request, reply, done=False)}, 0.0
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}, 0.0
    yield "ping", {"type": "ping"}, 0.0
    for n, word in enumerate(_words(reply.text)):
        if n == reply.stream_error_after:
            yield "error", _anthropic_error(Failure(529)), 0.0
            return
        yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": word}}, \
            reply.chunk_delay_s
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}, 0.0
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": reply.completion_tokens}}, 0.0
    yield "message_stop", {"type": "message_stop"}, 0.0


def _anthropic_error(failure: Failure) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(failure.status, "api_error")
    message = failure.message or {"rate_limit_error": "Number of requests has exceeded your "
                                  "rate limit.", "overloaded_error": "Overloaded"}.get(
        kind, "Internal server error")
    return {"type": "error", "error": {"type": kind, "message": message}}


@dataclass(frozen=True)
class _Api:
    answer: Callable[[ProviderRequest, Completion], Any]
    events: Callable[[ProviderRequest, Completion], Iterator[Any]]
    error: Callable[[Failure], Any] = field(default=_openai_error)


_API = {
    "/v1/chat/completions": _Api(_chat_answer, _chat_events),
    "/v1/responses": _Api(_responses_answer, _responses_events),
    "/v1/messages": _Api(lambda r, c: _message(r, c, done=True), _messages_events,
                         _anthropic_error),
}
