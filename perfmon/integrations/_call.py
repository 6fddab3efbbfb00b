"""One observed LLM call: what it asked, what came back, and the single record it becomes.

A call is recorded once, whichever way it ends: a response, an exception, a stream read to
the end, a stream closed or dropped half-way. The session and operation are taken when the
call starts, so a stream read later (or in another task) still lands where it was made.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

from perfmon._core import describe_error

log = logging.getLogger("perfmon")

_MAX_ERROR_MESSAGE = 1000

#: The call whose HTTP attempts are being made in this context (see ``count_attempt``).
active: ContextVar[Call | None] = ContextVar("perfmon_llm_call", default=None)


class Ledger:
    """Tokens in perfmon's one ledger (see perfmon._pricing): prompt_tokens counts every input
    token; cached, cache-write and 1-hour cache-write tokens are parts of it; reasoning
    tokens are part of completion_tokens. None means the provider did not say."""

    __slots__ = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
                 "cache_write_1h_tokens", "reasoning_tokens", "total_tokens")

    def __init__(self, *, prompt_tokens: int | None = None, completion_tokens: int | None = None,
                 cached_tokens: int | None = None, cache_write_tokens: int | None = None,
                 cache_write_1h_tokens: int | None = None, reasoning_tokens: int | None = None,
                 total_tokens: int | None = None) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.cache_write_tokens = cache_write_tokens
        self.total_tokens = total_tokens
        # The server refuses a whole session over a part larger than its whole: a part that
        # does not fit (a provider's odd report) is dropped, not sent.
        self.reasoning_tokens = (None if (reasoning_tokens or 0) > (completion_tokens or 0)
                                 else reasoning_tokens)
        self.cache_write_1h_tokens = (
            None if (cache_write_1h_tokens or 0) > (cache_write_tokens or 0)
            else cache_write_1h_tokens
        )


_NO_TOKENS = Ledger()


#: json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str), built once: dumps
#: with these options makes a new encoder (and the C encoder under it) for every call. The C
#: encoder keeps no table of the containers it is in: a prompt that contains itself fails
#: with RecursionError instead of ValueError (either way the call is not recorded).
_PROMPT_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)
_c_encoder = None if c_make_encoder is None else c_make_encoder(
    None, str, encode_basestring, None, ": ", ", ", True, False, True)


def prompt_snapshot(prompt: Any) -> str | None:
    """The prompt as the SDK hashes it (perfmon._session.hash_prompt), taken when the call
    starts so a caller that edits its message list afterwards changes nothing."""
    if prompt is None:
        return None
    if _c_encoder is None:  # pragma: no cover - a Python without the C accelerator
        return _PROMPT_ENCODER.encode(prompt)
    return "".join(_c_encoder(prompt, 0))


def read(obj: Any, *path: str) -> Any:
    """``obj.a.b`` for pydantic models or dicts; None when any step is missing."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


class Call:
    """One call in flight, from the first HTTP attempt to its single record."""

    __slots__ = ("_session", "_op", "provider", "model", "_prompt", "_started_ns",
                 "_first_ns", "_last_ns", "attempts", "streamed", "ledger", "_once",
                 "endpoint", "state", "reading", "__weakref__")

    def __init__(self, session: Any, op: Any, provider: str, model: str | None,
                 prompt: Any) -> None:
        self._session = session
        self._op = op
        self.provider = provider
        self.model = model  # the requested model until a response names the one that ran
        self._prompt = prompt_snapshot(prompt)
        self._started_ns = time.perf_counter_ns()
        self._first_ns: int | None = None
        self._last_ns: int | None = None  # when the last stream event arrived
        self.attempts = 0
        self.streamed = False
        self.ledger = _NO_TOKENS  # replaced (never changed) when a response tells
        self._once = [True]  # list.pop() is atomic: a finalizer thread cannot record twice
        self.endpoint: Any = None  # the _patch.Endpoint that reads its response and events
        self.state: dict[str, Any] = {}  # what a stream's reader keeps between events
        # True while the client reads the next event: a close from inside the client then
        # is its own cleanup, and the outcome (an event, the end, an error) is still to come.
        self.reading = False

    @property
    def waiting_for_first_token(self) -> bool:
        return self._first_ns is None

    def first_token(self) -> None:
        if self._first_ns is None:
            self._first_ns = time.perf_counter_ns()

    def finish(self, error: BaseException | None = None) -> None:
        """Record the call (only the first time this is called); never raises."""
        self._finish(error, time.perf_counter_ns())

    def dropped(self) -> None:
        """The caller let go of a stream without closing it: the call ended with the last
        event it received (the garbage collector may come much later)."""
        self._finish(None, self._last_ns or time.perf_counter_ns())

    def _finish(self, error: BaseException | None, end_ns: int) -> None:
        try:
            self._once.pop()
        except IndexError:
            return
        try:
            self._record(error, end_ns)
        except Exception:  # recording must never break the caller's model call
            log.debug("perfmon: could not record a %s call", self.provider, exc_info=True)

    def read_response(self, response: Any, parsed: bool = False) -> None:
        """``parsed``: the response is one of the client's own models, so not a raw response
        (asking a pydantic model for an attribute it lacks raises and catches an error)."""
        try:
            raw = None if parsed else getattr(response, "http_response", None)
            if raw is not None:  # from .with_raw_response
                response = raw.json()
            self.endpoint.response(self, response)
        except Exception:
            log.debug("perfmon: could not read a %s response", self.provider, exc_info=True)

    def _record(self, error: BaseException | None, end_ns: int) -> None:
        ttft = None if self._first_ns is None else (self._first_ns - self._started_ns) / 1e9
        ledger = self.ledger
        message = None if error is None else describe_error(error)[:_MAX_ERROR_MESSAGE]
        fields = {
            "model": self.model, "provider": self.provider,
            "prompt_tokens": ledger.prompt_tokens, "completion_tokens": ledger.completion_tokens,
            "cached_tokens": ledger.cached_tokens, "cache_write_tokens": ledger.cache_write_tokens,
            "cache_write_1h_tokens": ledger.cache_write_1h_tokens,
            "reasoning_tokens": ledger.reasoning_tokens,
            "latency_s": (end_ns - self._started_ns) / 1e9, "time_to_first_token_s": ttft,
            "streamed": self.streamed, "attempts": self.attempts or None,
            "prompt": self._prompt, "error_message": message,
        }
        self._session._record_api_call(
            self._op, ledger.total_tokens or 0, None, error is not None, fields
        )

    def _event(self, event: Any) -> None:
        if self._once:
            try:
                self.endpoint.event(self, event)
            except Exception:
                log.debug("perfmon: could not read a %s stream event", self.provider,
                          exc_info=True)
        self._last_ns = time.perf_counter_ns()  # after first_token(): never before it


def count_attempt() -> None:
    """Called once per HTTP attempt the client builds (first try and each retry)."""
    call = active.get()
    if call is not None:
        call.attempts += 1


def _ended(call: Call, exc: BaseException) -> None:
    # A caller that stops reading (break, then garbage collection) is not an error.
    if isinstance(exc, GeneratorExit):
        call.dropped()
    else:
        call.finish(exc)


def watch_stream(stream: Any, call: Call) -> Any:
    """Observe a sync client Stream in place (it stays the client's own object)."""
    call.streamed = True
    inner: Iterator[Any] = stream._iterator

    def observed() -> Iterator[Any]:
        try:
            while True:
                call.reading = True
                try:
                    event = next(inner)
                except StopIteration:
                    break
                finally:
                    call.reading = False
                call._event(event)
                yield event
        except BaseException as exc:
            _ended(call, exc)
            raise
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
        call.finish()

    stream._iterator = observed()
    _finish_on_close(stream.response, "close", call)
    weakref.finalize(stream, call.dropped)
    return stream


def watch_async_stream(stream: Any, call: Call) -> Any:
    """Observe an async client AsyncStream in place."""
    call.streamed = True
    inner: AsyncIterator[Any] = stream._iterator

    async def observed() -> AsyncIterator[Any]:
        try:
            while True:
                call.reading = True
                try:
                    event = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    call.reading = False
                call._event(event)
                yield event
        except BaseException as exc:
            _ended(call, exc)
            raise
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
        call.finish()

    stream._iterator = observed()
    _finish_on_close(stream.response, "aclose", call)
    _finish_on_close(stream.response, "close", call)
    weakref.finalize(stream, call.dropped)
    return stream


def _finish_on_close(response: Any, name: str, call: Call) -> None:
    """Every way of giving up a stream (its close(), the helpers' close(), a ``with`` block)
    ends in closing the HTTP response: record the call there, with what was received."""
    original = getattr(response, name, None)
    if original is None:
        return
    if name == "aclose":
        async def aclose() -> None:
            try:
                await original()
            finally:
                if not call.reading:
                    call.finish()

        setattr(response, name, aclose)
    else:
        def close() -> None:
            try:
                original()
            finally:
                if not call.reading:
                    call.finish()

        setattr(response, name, close)
