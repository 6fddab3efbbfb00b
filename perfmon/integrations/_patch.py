"""Patching a generated LLM client package (openai, anthropic) at its one request method.

Both official clients send every endpoint's call through ``SyncAPIClient.request`` /
``AsyncAPIClient.request`` (one call, including its retry loop) and build each HTTP attempt
with ``BaseClient._build_request``. Wrapping those two covers ``create``, the streaming
helpers and ``parse`` alike, for sync and async clients, and counts the attempts the retry
loop really made. Endpoints we do not know (embeddings, batches, ...) pass through untouched.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfmon._monitor import get_performance_monitor
from perfmon.integrations import _call
from perfmon.integrations._call import Call

log = logging.getLogger("perfmon")

_MARK = "__perfmon_original__"


@dataclass(frozen=True)
class Endpoint:
    """How to read one API path: the prompt to hash, a response, a stream event."""

    prompt: Callable[[dict[str, Any]], Any]
    response: Callable[[Call, Any], None]
    event: Callable[[Call, Any], None]


@dataclass(frozen=True)
class Client:
    """The classes of one client package that get patched."""

    base: type  # defines _build_request
    sync: type  # defines request
    async_: type  # defines async request
    streams: tuple[type, ...]
    async_streams: tuple[type, ...]
    models: tuple[type, ...] = ()  # the package's response models (never raw responses)


class Instrumentation:
    """The patch of one package: on for every client, or for chosen client objects."""

    def __init__(self, provider: str, endpoints: dict[str, Endpoint]) -> None:
        self.provider = provider
        self.endpoints = endpoints
        self._lock = threading.Lock()
        self._everywhere = False
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._patched: list[tuple[type, str]] = []

    def instrument(self, classes: Client, client: Any = None) -> None:
        with self._lock:
            if client is None:
                self._everywhere = True
            else:
                self._clients.add(client)
            self._patch(classes)

    def uninstrument(self) -> None:
        with self._lock:
            self._everywhere = False
            self._clients.clear()
            kept = []
            for owner, name in self._patched:
                original = getattr(owner.__dict__.get(name), _MARK, None)
                if original is None:
                    # Someone patched over ours: our wrapper stays under theirs, passing
                    # every call through, and is not patched in a second time later.
                    kept.append((owner, name))
                else:
                    setattr(owner, name, original)
            self._patched = kept

    def _patch(self, classes: Client) -> None:
        """Wrap each method not wrapped yet (so that instrumenting twice changes nothing)."""
        targets = (
            (classes.base, "_build_request", _counting),
            (classes.sync, "request", lambda f: self._sync_request(f, classes)),
            (classes.async_, "request", lambda f: self._async_request(f, classes)),
        )
        for owner, name, wrapper in targets:
            if (owner, name) not in self._patched:
                self._wrap(owner, name, wrapper)

    def _wrap(self, owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name]
        patched = functools.wraps(original)(wrapper(original))
        setattr(patched, _MARK, original)
        setattr(owner, name, patched)
        self._patched.append((owner, name))

    def begin(self, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        """A Call for a request worth recording, else None (the request passes through)."""
        try:
            return self._begin(client, args, kwargs)
        except Exception:  # never let the monitor break a model call
            log.debug("perfmon: not recording a %s call", self.provider, exc_info=True)
            return None

    def _begin(self, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        if not (self._everywhere or client in self._clients) or _call.active.get() is not None:
            return None
        monitor = get_performance_monitor()
        if not monitor.enabled:
            return None
        session, op = monitor._target()
        if session is None:
            return None  # outside any session: not recorded
        options = args[1] if len(args) > 1 else kwargs.get("options")
        endpoint = self.endpoints.get(getattr(options, "url", None))
        if endpoint is None:
            return None
        body = options.json_data if isinstance(options.json_data, dict) else {}
        model = body.get("model")
        call = Call(session, op, self.provider, None if model is None else str(model),
                    endpoint.prompt(body))
        call.endpoint = endpoint
        return call

    @staticmethod
    def finish(call: Call, result: Any, classes: Client) -> Any:
        """Record a response now; a stream is recorded when it ends, however it ends."""
        try:
            if isinstance(result, classes.streams):
                return _call.watch_stream(result, call)
            if isinstance(result, classes.async_streams):
                return _call.watch_async_stream(result, call)
        except Exception:  # a stream we cannot observe: record what we know, now
            log.debug("perfmon: cannot observe a %s stream", call.provider, exc_info=True)
        call.read_response(result, isinstance(result, classes.models))
        call.finish()
        return result

    def _sync_request(self, original: Any, classes: Client) -> Any:
        def request(client: Any, *args: Any, **kwargs: Any) -> Any:
            call = self.begin(client, args, kwargs)
            if call is None:
                return original(client, *args, **kwargs)
            token = _call.active.set(call)
            try:
                result = original(client, *args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            finally:
                _call.active.reset(token)
            return self.finish(call, result, classes)

        return request

    def _async_request(self, original: Any, classes: Client) -> Any:
        async def request(client: Any, *args: Any, **kwargs: Any) -> Any:
            call = self.begin(client, args, kwargs)
            if call is None:
                return await original(client, *args, **kwargs)
            token = _call.active.set(call)
            try:
                result = await original(client, *args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            finally:
                _call.active.reset(token)
            return self.finish(call, result, classes)

        return request


def _counting(original: Any) -> Any:
    def build_request(client: Any, *args: Any, **kwargs: Any) -> Any:
        _call.count_attempt()
        return original(client, *args, **kwargs)

    return build_request
