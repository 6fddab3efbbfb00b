"""PerformanceMetrics: everything recorded for one session, and its schema-v1 payload."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from datetime import datetime
from typing import Any

from perfmon import _analysis, _pricing
from perfmon._core import Anchor, OperationMetrics, _Extra, current, describe_error
from perfmon._limits import SESSION_METADATA_BYTES, fit_metadata

log = logging.getLogger("perfmon")

SCHEMA_VERSION = 1
DEFAULT_BOTTLENECK_THRESHOLD = 0.2
NAMED_COUNTERS = (
    "scenes_generated",
    "dialogue_lines_generated",
    "stage_directions_generated",
    "jokes_analyzed",
)
_COUNTER_LABELS = {
    "scenes_generated": "Scenes",
    "dialogue_lines_generated": "Dialogue Lines",
    "stage_directions_generated": "Stage Directions",
    "jokes_analyzed": "Jokes Analyzed",
}


# What the server accepts (schema v1). Payloads are shaped to fit, because one value out of
# bounds gets the whole session rejected.
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_SLUG_MAX = 128
_NAME_MAX = 200
_TEXT_MAX = 255
_MAX_KEYS = 100
_MAX_TAGS = 50


def _name(value: Any) -> str:
    return str(value)[:_NAME_MAX] or "?"


def _text(value: Any, limit: int = _TEXT_MAX) -> str | None:
    return None if value is None else str(value)[:limit]


def _mapping(value: dict[Any, Any] | None) -> dict[str, Any]:
    """At most 100 keys of at most 200 characters, as the server requires."""
    if not value:
        return {}
    return {str(k)[:_NAME_MAX]: v for k, v in list(value.items())[:_MAX_KEYS]}


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def _check_slug(kind: str, value: str | None) -> None:
    if value is not None and (len(value) > _SLUG_MAX or not _SLUG.match(value)):
        log.warning("perfmon: %s %r is not a slug (letters, digits, . _ : -, at most %d "
                    "characters); the server will refuse this session", kind, value, _SLUG_MAX)


def hash_prompt(prompt: Any) -> str:
    """SHA-256 of a prompt (text, bytes, or a JSON-able list of messages); the prompt itself
    is never kept."""
    if isinstance(prompt, bytes):
        data = prompt
    elif isinstance(prompt, str):
        data = prompt.encode("utf-8")
    else:
        text = json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)
        data = text.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


class ApiCall:
    """One LLM API call, tied to the operation that was current when it was recorded."""

    __slots__ = (
        "_op",
        "at_ns",
        "provider",
        "model",
        "latency_s",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "total_tokens",
        "cost_usd",
        "prompt_hash",
        "error",
        "error_message",
        "cache_write_1h_tokens",
        "reasoning_tokens",
        "streamed",
        "time_to_first_token_s",
        "attempts",
    )

    @property
    def operation(self) -> OperationMetrics | None:
        """The operation that was current when the call was recorded, if any."""
        return self._op

    def _wire(self, number: int, ids: dict[int, str], anchor: Anchor) -> dict[str, Any]:
        wire = {
            "id": f"c{number}",
            "operation_id": ids.get(id(self._op)),
            "provider": _text(self.provider, 64),
            "model": _text(self.model, 128),
            "at": anchor.to_datetime(self.at_ns).isoformat(),
            "latency_s": self.latency_s,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,  # null on purpose: the server prices it
            "prompt_hash": self.prompt_hash,
            "error": self.error,
            "error_message": self.error_message,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "streamed": self.streamed or None,
            "time_to_first_token_s": self.time_to_first_token_s,
            "attempts": self.attempts,
        }
        # Unknown values are left out rather than sent as null, so the server's defaults apply.
        keep_null = ("operation_id", "cost_usd")
        return {k: v for k, v in wire.items() if v is not None or k in keep_null}

    def __repr__(self) -> str:
        return f"<ApiCall {self.model or '?'} tokens={self.total_tokens} cost={self.cost_usd}>"


def _counter_property(name: str) -> Any:
    def get(self: PerformanceMetrics) -> int | float:
        return self.counters.get(name, 0)

    def set_(self: PerformanceMetrics, value: int | float) -> None:
        with self._lock:
            self.counters[name] = value

    return property(get, set_, doc=f"The ``{name}`` generation counter.")


class PerformanceMetrics:
    """Everything recorded for one session: operations, cache use, API calls, counters.

    Usually created by ``monitor.session()`` or ``monitor.start_session()``. Thread-safe: one
    lock per session guards every list and counter. ``to_dict()`` is the schema-v1 payload.
    """

    def __init__(
        self,
        session_id: str,
        start_time: datetime | None = None,
        *,
        episode: str | None = None,
        workflow: str | None = None,
        release: str | None = None,
        environment: str | None = None,
        host: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        metadata: dict[str, Any] | None = None,
        bottleneck_threshold: float = DEFAULT_BOTTLENECK_THRESHOLD,
    ) -> None:
        if not session_id:
            raise ValueError("session_id must be a non-empty string")
        self.session_id = str(session_id)
        _check_slug("session id", self.session_id)
        _check_slug("episode", episode)
        self.episode = episode
        self.workflow = workflow
        self.release = release
        self.environment = environment
        self.host = host
        self.tags: list[str] = list(tags) if tags else []
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.bottleneck_threshold = float(bottleneck_threshold)
        self.status = "running"

        self._owner = self  # see perfmon._core.current: a session is its own owner
        self._previous_context: Any = None  # what start_session() replaced in its context
        self._lock = threading.Lock()
        self._ops: list[OperationMetrics] = []
        self._calls: list[ApiCall] = []
        self._anchor = Anchor()
        self.start_ns = self._anchor.perf_ns
        if start_time is not None:
            self.start_ns = self._anchor.to_ns(start_time)
        self.end_ns: int | None = None

        self.cache_hits = 0
        self.cache_misses = 0
        self._cache_by_name: dict[str, list[int]] = {}
        self.api_calls = 0
        self.api_errors = 0
        self.total_tokens_used = 0
        self.estimated_api_cost = 0.0
        self.unpriced_api_calls = 0
        self.counters: dict[str, int | float] = dict.fromkeys(NAMED_COUNTERS, 0)

    # -- times -------------------------------------------------------------------------------

    @property
    def start_time(self) -> datetime:
        """When the session started (timezone-aware UTC)."""
        return self._anchor.to_datetime(self.start_ns)

    @property
    def end_time(self) -> datetime | None:
        """When the session ended (timezone-aware UTC); None while it runs."""
        return None if self.end_ns is None else self._anchor.to_datetime(self.end_ns)

    @property
    def total_duration_seconds(self) -> float | None:
        """Wall time of the finished session; None while it runs (see ``elapsed_seconds``)."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    @property
    def elapsed_seconds(self) -> float:
        """Wall time so far (or in total, once finished)."""
        return self._wall_ns() / 1e9

    @property
    def finished(self) -> bool:
        """True once the session has ended."""
        return self.end_ns is not None

    def _wall_ns(self) -> int:
        end = self.end_ns if self.end_ns is not None else time.perf_counter_ns()
        return end - self.start_ns

    def finish(self, success: bool = True) -> PerformanceMetrics:
        """End the session (once): status becomes "completed", or "failed" if not success."""
        self._end(success)
        return self

    def _end(self, success: bool) -> bool:
        """Finish; True only for the call that actually ended the session."""
        with self._lock:
            if self.end_ns is not None:
                return False
            self.status = "completed" if success else "failed"
            self.end_ns = time.perf_counter_ns()
            return True

    # -- recording ---------------------------------------------------------------------------

    @property
    def operations(self) -> list[OperationMetrics]:
        """A copy of the recorded operations, in start order (running ones included)."""
        with self._lock:
            return list(self._ops)

    @property
    def api_call_records(self) -> list[ApiCall]:
        """A copy of the recorded API calls (``api_calls`` is their count)."""
        with self._lock:
            return list(self._calls)

    def add_operation(self, operation: OperationMetrics) -> None:
        """Record an operation that was timed outside this session's context."""
        with self._lock:
            if operation._owner is self and any(op is operation for op in self._ops):
                return
            if operation._owner is None:
                operation._owner = self
            self._ops.append(operation)

    def _current_operation(self) -> OperationMetrics | None:
        cur = current.get()
        if isinstance(cur, OperationMetrics) and cur._owner is self:
            return cur
        return None

    def record_cache_hit(self, cache_name: str | None = None) -> None:
        """Count a cache hit for the session, for ``cache_name``, and for the current operation."""
        self._record_cache(0, cache_name, self._current_operation())

    def record_cache_miss(self, cache_name: str | None = None) -> None:
        """Count a cache miss for the session, for ``cache_name``, and for the current operation."""
        self._record_cache(1, cache_name, self._current_operation())

    def _record_cache(self, slot: int, name: str | None, op: OperationMetrics | None) -> None:
        with self._lock:
            if slot == 0:
                self.cache_hits += 1
            else:
                self.cache_misses += 1
            if name is not None:
                self._cache_by_name.setdefault(name, [0, 0])[slot] += 1
            if op is not None:
                extra = op._extra
                if extra is None:
                    extra = op._extra = _Extra()
                if slot == 0:
                    extra.hits += 1
                else:
                    extra.misses += 1

    @property
    def cache_hit_rate(self) -> float:
        """Hits as a percentage of lookups (75.0 for 3 hits and 1 miss); 0.0 with no lookups."""
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups * 100 if lookups else 0.0

    @property
    def cache_by_name(self) -> dict[str, dict[str, int]]:
        """Hits and misses per cache name."""
        with self._lock:
            return {k: {"hits": v[0], "misses": v[1]} for k, v in self._cache_by_name.items()}

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
    ) -> ApiCall:
        """Record one LLM API call. See ``PerformanceMonitor.record_api_call``."""
        return self._record_api_call(
            self._current_operation(), tokens_used, cost, error, model=model, provider=provider,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cached_tokens=cached_tokens, cache_write_tokens=cache_write_tokens,
            latency_s=latency_s, prompt=prompt, error_message=error_message,
        )

    def _record_api_call(
        self,
        op: OperationMetrics | None,
        tokens_used: int,
        cost: float | None,
        error: bool | str | BaseException,
        *,
        model: str | None,
        provider: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cached_tokens: int | None,
        cache_write_tokens: int | None,
        latency_s: float | None,
        prompt: Any,
        error_message: str | None,
        cache_write_1h_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        streamed: bool = False,
        time_to_first_token_s: float | None = None,
        attempts: int | None = None,
    ) -> ApiCall:
        call = ApiCall()
        call._op = op
        now = time.perf_counter_ns()
        # ``at`` is when the call started: the record is usually made once the response is in.
        call.at_ns = now - round(latency_s * 1e9) if latency_s else now
        call.provider = provider
        call.model = model
        call.latency_s = None if latency_s is None else max(0.0, float(latency_s))
        call.prompt_tokens = prompt_tokens
        call.completion_tokens = completion_tokens
        call.cached_tokens = cached_tokens
        call.cache_write_tokens = cache_write_tokens
        call.cache_write_1h_tokens = cache_write_1h_tokens
        call.reasoning_tokens = reasoning_tokens
        call.streamed = bool(streamed)
        call.time_to_first_token_s = time_to_first_token_s
        call.attempts = attempts
        total = tokens_used or (prompt_tokens or 0) + (completion_tokens or 0)
        call.total_tokens = total
        if cost is None:
            cost = _pricing.estimate_cost(
                model, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens
            )
        call.cost_usd = None
        if cost is not None:
            cost = float(cost)
            if math.isfinite(cost) and cost >= 0:
                call.cost_usd = cost
            else:
                log.warning("perfmon: ignoring API call cost %r (not a finite amount >= 0)", cost)
        call.prompt_hash = None if prompt is None else hash_prompt(prompt)
        if isinstance(error, BaseException):
            error_message = error_message or describe_error(error)
        elif isinstance(error, str) and error:
            error_message = error_message or error
        call.error = bool(error) or error_message is not None
        call.error_message = error_message
        with self._lock:
            self._calls.append(call)
            self.api_calls += 1
            self.total_tokens_used += total
            if call.error:
                self.api_errors += 1
            if call.cost_usd is None:
                self.unpriced_api_calls += 1
            else:
                self.estimated_api_cost += call.cost_usd
        return call

    def increment(self, counter: str, amount: int | float = 1) -> None:
        """Add to an open-ended generation counter, e.g. ``increment("scenes_generated", 9)``."""
        with self._lock:
            self.counters[counter] = self.counters.get(counter, 0) + amount

    scenes_generated = _counter_property("scenes_generated")
    dialogue_lines_generated = _counter_property("dialogue_lines_generated")
    stage_directions_generated = _counter_property("stage_directions_generated")
    jokes_analyzed = _counter_property("jokes_analyzed")

    # -- analysis ----------------------------------------------------------------------------

    def self_time_by_name(self) -> list[_analysis.NameTime]:
        """Self time (own time minus children's, parallelism merged) per operation name."""
        return _analysis.self_time_by_name(self.operations, self._wall_ns())

    def bottlenecks(self, threshold: float | None = None) -> list[_analysis.NameTime]:
        """Names whose self time exceeds ``threshold`` (default ``bottleneck_threshold``) of
        the session's wall time."""
        limit = self.bottleneck_threshold if threshold is None else threshold
        return [item for item in self.self_time_by_name() if item.share > limit]

    @property
    def bottleneck_warnings(self) -> list[str]:
        """One line per bottleneck (see ``bottlenecks()``), as the summary prints them."""
        return [
            f"{b.name}: {b.self_s:.2f}s self time ({b.share * 100:.1f}% of session) "
            f"in {b.calls} call{'s' if b.calls != 1 else ''}"
            for b in self.bottlenecks()
        ]

    @property
    def slowest_operations(self) -> list[dict[str, Any]]:
        """The five longest finished operations: ``{"operation": name, "duration": seconds}``."""
        return [
            {"operation": op.operation_name, "duration": op.duration_seconds}
            for op in _analysis.slowest(self.operations, 5)
        ]

    # -- output ------------------------------------------------------------------------------

    def _operation_ids(self) -> dict[int, str]:
        with self._lock:
            return {id(op): f"o{i}" for i, op in enumerate(self._ops, 1)}

    def to_dict(self) -> dict[str, Any]:
        """The schema-v1 payload for this session (exactly the documented top-level keys)."""
        with self._lock:
            ops = list(self._ops)
            calls = list(self._calls)
            counters = dict(self.counters)
            by_name = {k: {"hits": v[0], "misses": v[1]} for k, v in self._cache_by_name.items()}
            hits, misses = self.cache_hits, self.cache_misses
            status, end_ns = self.status, self.end_ns
        anchor = self._anchor
        session: dict[str, Any] = {"id": self.session_id}
        if self.episode is not None:
            session["episode"] = self.episode
        # Cut to the server's column sizes (the schema itself allows 255 characters).
        for key, limit in (("workflow", 128), ("release", 128), ("environment", 64),
                           ("host", 255)):
            value = _text(getattr(self, key), limit)
            if value is not None:
                session[key] = value
        by_name = dict(list(by_name.items())[:_MAX_KEYS])
        session.update(
            status=status,
            started_at=anchor.to_datetime(self.start_ns).isoformat(),
            ended_at=None if end_ns is None else anchor.to_datetime(end_ns).isoformat(),
            cache={"hits": hits, "misses": misses,
                   "by_name": {_name(k): v for k, v in by_name.items()}},
            counters={_name(k): _count(v) for k, v in _mapping(counters).items()},
            tags=[_name(tag) for tag in self.tags if tag][:_MAX_TAGS],
            metadata=fit_metadata(self.metadata, SESSION_METADATA_BYTES),
        )
        ids = {id(op): f"o{i}" for i, op in enumerate(ops, 1)}
        return {
            "schema_version": SCHEMA_VERSION,
            "session": session,
            "operations": [op._wire(ids, anchor) for op in ops],
            "api_calls": [call._wire(i, ids, anchor) for i, call in enumerate(calls, 1)],
        }

    def get_summary(self) -> str:
        """A human-readable report of the session."""
        from perfmon._summary import render

        return render(self)

    def __repr__(self) -> str:
        return f"<PerformanceMetrics {self.session_id!r} {self.status} ops={len(self._ops)}>"
