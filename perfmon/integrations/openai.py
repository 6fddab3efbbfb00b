"""Records the official ``openai`` client's chat completions and Responses API calls.

Use ``perfmon.instrument_openai()`` (every client) or ``perfmon.instrument_openai(client)``
(that client object only; copies made with ``client.with_options()`` are not included).

Tokens: OpenAI's ``prompt_tokens`` (``input_tokens`` in the Responses API) already includes
``prompt_tokens_details.cached_tokens``, and ``completion_tokens`` includes
``completion_tokens_details.reasoning_tokens``: they map one to one onto perfmon's ledger.
OpenAI reports no cache writes. Streamed chat completions carry usage only when the caller
asks for it with ``stream_options={"include_usage": True}``; perfmon does not add that
option (it changes the chunks the caller receives), so a stream without it is recorded
with its model, latency and time to first token but no tokens.
"""

from __future__ import annotations

from typing import Any

import openai
from openai import _base_client, _streaming

from perfmon.integrations._call import Call, Ledger, read
from perfmon.integrations._patch import Client, Endpoint, Instrumentation

__all__ = ["instrument", "uninstrument"]

PROVIDER = "openai"


def _chat_usage(call: Call, usage: Any) -> None:
    if usage is None:
        return
    if not isinstance(usage, dict):  # the client's model: its attributes, read directly
        prompt_details = getattr(usage, "prompt_tokens_details", None)
        completion_details = getattr(usage, "completion_tokens_details", None)
        call.ledger = Ledger(
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cached_tokens=read(prompt_details, "cached_tokens"),
            reasoning_tokens=read(completion_details, "reasoning_tokens"),
            total_tokens=getattr(usage, "total_tokens", None),
        )
    else:
        call.ledger = Ledger(
            prompt_tokens=read(usage, "prompt_tokens"),
            completion_tokens=read(usage, "completion_tokens"),
            cached_tokens=read(usage, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=read(usage, "completion_tokens_details", "reasoning_tokens"),
            total_tokens=read(usage, "total_tokens"),
        )


def _chat_response(call: Call, response: Any) -> None:
    call.model = read(response, "model") or call.model
    _chat_usage(call, read(response, "usage"))


def _chat_chunk(call: Call, chunk: Any) -> None:
    # Runs for every chunk: after the first token only the usage chunk needs reading.
    if call.waiting_for_first_token:
        call.model = read(chunk, "model") or call.model
        choices = read(chunk, "choices")
        if choices:
            delta = read(choices[0], "delta")
            if read(delta, "content") or read(delta, "tool_calls") or read(delta, "refusal"):
                call.first_token()
    usage = read(chunk, "usage")
    if usage is not None:
        call.model = read(chunk, "model") or call.model
        _chat_usage(call, usage)


def _responses_response(call: Call, response: Any) -> None:
    call.model = read(response, "model") or call.model
    usage = read(response, "usage")
    if usage is not None:
        call.ledger = Ledger(
            prompt_tokens=read(usage, "input_tokens"),
            completion_tokens=read(usage, "output_tokens"),
            cached_tokens=read(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=read(usage, "output_tokens_details", "reasoning_tokens"),
            total_tokens=read(usage, "total_tokens"),
        )


def _responses_event(call: Call, event: Any) -> None:
    kind = read(event, "type") or ""
    if kind.endswith(".delta"):
        call.first_token()
    elif kind.startswith("response."):
        response = read(event, "response")
        if response is not None:
            _responses_response(call, response)


def _responses_prompt(body: dict[str, Any]) -> Any:
    if body.get("instructions") is None:
        return body.get("input")
    return {"instructions": body.get("instructions"), "input": body.get("input")}


ENDPOINTS = {
    "/chat/completions": Endpoint(lambda body: body.get("messages"), _chat_response,
                                  _chat_chunk),
    "/responses": Endpoint(_responses_prompt, _responses_response, _responses_event),
}
_CLASSES = Client(
    base=_base_client.BaseClient,
    sync=_base_client.SyncAPIClient,
    async_=_base_client.AsyncAPIClient,
    streams=(_streaming.Stream,),
    async_streams=(_streaming.AsyncStream,),
    models=(openai.BaseModel,),
)
_INSTRUMENTATION = Instrumentation(PROVIDER, ENDPOINTS)


def instrument(client: openai.OpenAI | openai.AsyncOpenAI | None = None) -> None:
    """Record calls of every OpenAI client, or of ``client`` only. Harmless to repeat."""
    _INSTRUMENTATION.instrument(_CLASSES, client)


def uninstrument() -> None:
    """Undo every ``instrument()``: the client package is as it was."""
    _INSTRUMENTATION.uninstrument()
