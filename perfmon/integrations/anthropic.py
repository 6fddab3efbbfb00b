"""Records the official ``anthropic`` client's Messages API calls.

Covers ``messages.create`` (with or without ``stream=True``), ``messages.stream`` and
``messages.parse``, on ``Anthropic`` and ``AsyncAnthropic``. Use
``perfmon.instrument_anthropic()`` (every client) or ``perfmon.instrument_anthropic(client)``
(that client object only; copies made with ``client.with_options()`` are not included).

Tokens: Anthropic's ``input_tokens`` excludes the tokens read from and written to the
prompt cache, so perfmon's ``prompt_tokens`` (every input token) is
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``;
``cached_tokens`` is ``cache_read_input_tokens``, ``cache_write_tokens`` is
``cache_creation_input_tokens`` and ``cache_write_1h_tokens`` its 1-hour part
(``usage.cache_creation.ephemeral_1h_input_tokens``), priced apart from 5-minute writes.
"""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic import _base_client, _streaming, _types

from perfmon.integrations._call import Call, Ledger, read
from perfmon.integrations._patch import Client, Endpoint, Instrumentation

__all__ = ["instrument", "uninstrument"]

PROVIDER = "anthropic"
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens")


def ledger(usage: dict[str, Any]) -> Ledger:
    """perfmon's ledger from Anthropic's usage counts (None where Anthropic said nothing)."""
    fresh, output = usage.get("input_tokens"), usage.get("output_tokens")
    read_, written = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    prompt = None if fresh is None else fresh + (read_ or 0) + (written or 0)
    total = None if prompt is None or output is None else prompt + output
    return Ledger(prompt_tokens=prompt, completion_tokens=output, cached_tokens=read_,
                  cache_write_tokens=written, cache_write_1h_tokens=usage.get("1h"),
                  total_tokens=total)


def _counts(usage: Any) -> dict[str, Any]:
    counts = {name: read(usage, name) for name in _USAGE_FIELDS}
    counts["1h"] = read(usage, "cache_creation", "ephemeral_1h_input_tokens")
    return {name: value for name, value in counts.items() if value is not None}


def _message(call: Call, message: Any) -> None:
    call.model = read(message, "model") or call.model
    usage = read(message, "usage")
    if usage is not None:
        call.ledger = ledger(_counts(usage))


def _event(call: Call, event: Any) -> None:
    kind = read(event, "type")
    if kind == "message_start":
        _message(call, read(event, "message"))
        call.state["usage"] = _counts(read(event, "message", "usage"))
    elif kind == "content_block_delta":
        call.first_token()
    elif kind == "message_delta":
        # Cumulative counts: output_tokens so far, and any input counts sent again.
        usage = {**call.state.get("usage", {}), **_counts(read(event, "usage"))}
        call.state["usage"] = usage
        call.ledger = ledger(usage)


def _prompt(body: dict[str, Any]) -> Any:
    system = body.get("system")
    # The client passes its "not given" placeholder for a call without a system prompt:
    # hashed as is, its repr (a memory address) would make each process's hash its own.
    if system is None or isinstance(system, (_types.NotGiven, _types.Omit)):
        return body.get("messages")
    return {"system": system, "messages": body.get("messages")}


ENDPOINTS = {"/v1/messages": Endpoint(_prompt, _message, _event)}
_CLASSES = Client(
    base=_base_client.BaseClient,
    sync=_base_client.SyncAPIClient,
    async_=_base_client.AsyncAPIClient,
    streams=(_streaming.Stream,),
    async_streams=(_streaming.AsyncStream,),
    models=(anthropic.BaseModel,),
)
_INSTRUMENTATION = Instrumentation(PROVIDER, ENDPOINTS)


def instrument(client: anthropic.Anthropic | anthropic.AsyncAnthropic | None = None) -> None:
    """Record calls of every Anthropic client, or of ``client`` only. Harmless to repeat."""
    _INSTRUMENTATION.instrument(_CLASSES, client)


def uninstrument() -> None:
    """Undo every ``instrument()``: the client package is as it was."""
    _INSTRUMENTATION.uninstrument()
