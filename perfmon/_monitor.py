"""PerformanceMonitor: sessions, the original start/end API, and the process-wide monitor."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Any

from perfmon import _config, _core
from perfmon._core import (
    NOOP_OPERATION,
    OperationMetrics,
    OperationScope,
    _extra_of,
    current,
    new_operation,
    operation_scope,
    register,
    unregister,
)
from perfmon._session import DEFAULT_BOTTLENECK_THRESHOLD, ApiCall, PerformanceMetrics

log = logging.getLogger("perfmon")

DEFAULT_MAX_HISTORY = 100
_HOST = socket.gethostname()


class _SessionScope:
    """``with monitor.session(...) as metrics`` (or ``async with``)."""

    __slots__ = ("_monitor", "_session", "_token")

    def __init__(self, monitor: PerformanceMonitor, session: PerformanceMetrics) -> None:
        self._monitor = monitor
        self._session = session
        self._token: Any = None

    def __enter__(self) -> PerformanceMetrics:
        self._session.start_ns = time.perf_counter_ns()  # the block starts now
        if self._monitor.enabled:
            self._token = current.set(self._session)
        return self._session

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            try:
                current.reset(self._token)
            except ValueError:  # left in another context than it was entered in
                pass
            self._token = None
            self._monitor._finish(self._session, success=exc is None)
        else:
            self._session.finish(success=exc is None)

    async def __aenter__(self) -> PerformanceMetrics:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class PerformanceMonitor:
    """Starts and ends sessions and records into the current one.

    The current session comes from a context variable (so concurrent sessions in threads or
    asyncio tasks never mix), falling back to the most recent session that ``start_session()``
    started and that is still running. Ended sessions are kept in a bounded history.
    """

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        max_history: int = DEFAULT_MAX_HISTORY,
        bottleneck_threshold: float = DEFAULT_BOTTLENECK_THRESHOLD,
    ) -> None:
        self._lock = threading.Lock()
        self._history: deque[PerformanceMetrics] = deque(maxlen=max_history)
        self._started: list[PerformanceMetrics] = []  # start_session() sessions still running
        self._process_wide = False
        self._enabled = (not _config.env_disabled()) if enabled is None else bool(enabled)
        self.bottleneck_threshold = bottleneck_threshold

    # -- switches ----------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether recording is on (for the process-wide monitor, this drives the decorators)."""
        return _core._enabled if self._process_wide else self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        if self._process_wide:
            _core._enabled = self._enabled

    def enable(self) -> None:
        """Record again after ``disable()``."""
        self.enabled = True

    def disable(self) -> None:
        """Make every decorator, context manager and record call a near no-op."""
        self.enabled = False

    @property
    def max_history(self) -> int:
        """How many ended sessions the history keeps (settable)."""
        return self._history.maxlen or 0

    @max_history.setter
    def max_history(self, value: int) -> None:
        with self._lock:
            self._history = deque(self._history, maxlen=value)

    # -- sessions ----------------------------------------------------------------------------

    def _new_session(
        self,
        session_id: str,
        episode: str | None,
        workflow: str | None,
        release: str | None,
        environment: str | None,
        tags: list[str] | tuple[str, ...] | None,
        metadata: dict[str, Any] | None,
    ) -> PerformanceMetrics:
        session = PerformanceMetrics(
            session_id,
            episode=episode,
            workflow=workflow,
            release=release or os.environ.get(_config.ENV_RELEASE) or None,
            environment=environment or os.environ.get(_config.ENV_ENVIRONMENT) or None,
            host=_HOST,
            tags=tags,
            metadata=metadata,
            bottleneck_threshold=self.bottleneck_threshold,
        )
        if self.enabled:
            _config.session_started(session)
        return session

    def session(
        self,
        session_id: str,
        *,
        episode: str | None = None,
        workflow: str | None = None,
        release: str | None = None,
        environment: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> _SessionScope:
        """A context manager (sync and async) that runs the block as one session.

        Everything recorded inside the block, including by tasks it gathers, belongs to the
        session; it ends as "completed", or "failed" if the block raises, and is then kept in
        the history and handed to the exporter.
        """
        session = self._new_session(
            session_id, episode, workflow, release, environment, tags, metadata
        )
        return _SessionScope(self, session)

    def start_session(
        self,
        session_id: str,
        *,
        episode: str | None = None,
        workflow: str | None = None,
        release: str | None = None,
        environment: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PerformanceMetrics | None:
        """Start a session for this context and make it the process default (original API).

        Returns None while disabled. Prefer ``with monitor.session(...)``.
        """
        if not self.enabled:
            return None
        session = self._new_session(
            session_id, episode, workflow, release, environment, tags, metadata
        )
        session._previous_context = current.get()
        current.set(session)
        with self._lock:
            self._started.append(session)
            self._update_default()
        return session

    def end_session(
        self, session: PerformanceMetrics | None = None, *, success: bool = True
    ) -> PerformanceMetrics | None:
        """End ``session`` (default: the current one) and return it; None if there is none."""
        if not self.enabled:
            return None
        cur = current.get()
        if session is None:
            session = cur._owner if cur is not None else self._fallback_session()
        if session is None or session.finished:
            return None
        if cur is not None and cur._owner is session:
            current.set(getattr(session, "_previous_context", None))
        self._finish(session, success=success)
        return session

    def _finish(self, session: PerformanceMetrics, *, success: bool) -> None:
        ended_here = session._end(success)
        with self._lock:
            if session in self._started:
                self._started.remove(session)
                self._update_default()
            if not ended_here:  # ended twice (end_session() inside its own block): once is enough
                return
            self._history.append(session)
        try:
            _config.session_finished(session)
        except Exception:  # the exporter must never hurt the generator
            log.debug("perfmon: could not hand session %s to the exporter", session.session_id,
                      exc_info=True)

    def _update_default(self) -> None:
        if self._process_wide:
            _core._default = self._started[-1] if self._started else None

    def _fallback_session(self) -> PerformanceMetrics | None:
        if self._process_wide:
            return _core._default
        with self._lock:
            return self._started[-1] if self._started else None

    @property
    def current_session(self) -> PerformanceMetrics | None:
        """The session recording in this context (original attribute name)."""
        return self.get_current_metrics()

    def get_current_metrics(self) -> PerformanceMetrics | None:
        """The session recording in this context, else the ``start_session()`` default."""
        cur = current.get()
        return cur._owner if cur is not None else self._fallback_session()

    def get_session_history(self) -> list[PerformanceMetrics]:
        """Ended sessions, oldest first (at most ``max_history``)."""
        with self._lock:
            return list(self._history)

    def clear_history(self) -> None:
        """Forget the ended sessions kept in the history."""
        with self._lock:
            self._history.clear()

    # -- operations --------------------------------------------------------------------------

    def operation(self, name: str, **metadata: Any) -> OperationScope:
        """A context manager (sync and async) timing the block as one operation of the
        current session: ``with monitor.operation("scene_generation", scene=3) as op: ...``.
        The block's exception, if any, is recorded on the operation and propagates."""
        if not self.enabled:
            return NOOP_OPERATION  # type: ignore[return-value]
        return operation_scope(name, metadata)  # type: ignore[no-any-return]

    def start_operation(
        self, operation_name: str, metadata: dict[str, Any] | None = None
    ) -> OperationMetrics:
        """Start timing an operation and make it current (original API; pair with
        ``end_operation``). Prefer ``with monitor.operation(...)``."""
        op = new_operation(operation_name, dict(metadata) if metadata else None)
        if self.enabled:
            token = register(op)
            if token is not None:
                _extra_of(op).token = token
        op.start_ns = time.perf_counter_ns()
        return op

    def end_operation(
        self, operation: OperationMetrics, success: bool = True, error: str | None = None
    ) -> None:
        """Stop an operation from ``start_operation`` (or one built by hand) and record it."""
        if not isinstance(operation, OperationMetrics):
            return
        operation.finish(success=success, error=error)
        extra = operation._extra
        token = None if extra is None else extra.token
        if token is not None:
            extra.token = None  # type: ignore[union-attr]
            if current.get() is operation:  # ended out of order: leave the context alone
                unregister(token)
        elif operation._owner is None and self.enabled:
            session = self.get_current_metrics()
            if session is not None:
                session.add_operation(operation)

    # -- cache, API calls, counters ----------------------------------------------------------

    def _target(self) -> tuple[PerformanceMetrics | None, OperationMetrics | None]:
        cur = current.get()
        if cur is None:
            return self._fallback_session(), None
        session = cur._owner
        return session, (cur if cur is not session else None)

    def record_cache_hit(self, cache_name: str | None = None) -> None:
        """Count a cache hit in the current session, per cache name and per operation."""
        if self.enabled:
            session, op = self._target()
            if session is not None:
                session._record_cache(0, cache_name, op)

    def record_cache_miss(self, cache_name: str | None = None) -> None:
        """Count a cache miss in the current session, per cache name and per operation."""
        if self.enabled:
            session, op = self._target()
            if session is not None:
                session._record_cache(1, cache_name, op)

    def record_api_call(
        self,
        tokens_used: int = 0,
        cost: float | None = None,
        error: bool | str | BaseException = False,
        *,
        model: str | None = None,
        provider: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cached_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        latency_s: float | None = None,
        prompt: Any = None,
        error_message: str | None = None,
        cache_write_1h_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        streamed: bool = False,
        time_to_first_token_s: float | None = None,
        attempts: int | None = None,
    ) -> ApiCall | None:
        """Record one LLM API call in the current session.

        ``tokens_used`` is the total (defaults to prompt + completion tokens). With ``cost``
        omitted and a model in the price table, the cost is computed here; otherwise it is
        sent as null and priced by the server. ``prompt`` is hashed into ``prompt_hash`` and
        never stored. ``error`` may be a bool, a message or the exception itself.
        """
        if not self.enabled:
            return None
        session, op = self._target()
        if session is None:
            return None
        return session._record_api_call(
            op, tokens_used, cost, error, model=model, provider=provider,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cached_tokens=cached_tokens, cache_write_tokens=cache_write_tokens,
            latency_s=latency_s, prompt=prompt, error_message=error_message,
            cache_write_1h_tokens=cache_write_1h_tokens, reasoning_tokens=reasoning_tokens,
            streamed=streamed, time_to_first_token_s=time_to_first_token_s, attempts=attempts,
        )

    def increment(self, counter: str, amount: int | float = 1) -> None:
        """Add to a generation counter of the current session (``"scenes_generated"``, ...)."""
        if self.enabled:
            session = self._target()[0]
            if session is not None:
                session.increment(counter, amount)


_MONITOR = PerformanceMonitor()
_MONITOR._process_wide = True
_core._enabled = _MONITOR._enabled


def get_performance_monitor() -> PerformanceMonitor:
    """The process-wide monitor that the decorators record through."""
    return _MONITOR
