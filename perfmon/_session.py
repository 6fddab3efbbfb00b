"""PerformanceMetrics: everything recorded for one session, and its schema-v1 payload."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

from perfmon import _analysis, _summary, _wire
from perfmon._calls import ApiCall, new_call
from perfmon._core import (
    Anchor,
    OperationMetrics,
    _Extra,
    current,
    from_record,
    record_map,
    record_wire,
)
from perfmon._memory import peak_rss_bytes
from perfmon._wire import SCHEMA_VERSION, SESSION_METADATA_BYTES, fit_metadata

log = logging.getLogger("perfmon")

DEFAULT_BOTTLENECK_THRESHOLD = 0.2
NAMED_COUNTERS = (
    "scenes_generated",
    "dialogue_lines_generated",
    "stage_directions_generated",
    "jokes_analyzed",
)


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
    lock per session guards its counters and records; operations are appended atomically.
    ``to_dict()`` is the schema-v1 payload.
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
        _wire.check_slug("session id", self.session_id)
        _wire.check_slug("episode", episode)
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
        self._pid = os.getpid()  # a forked child never sends its parent's sessions
        self._lock = threading.Lock()  # guards the counters and the cache and call records
        # Operations in start order: OperationMetrics, or the name a finished decorated call
        # leaves in its place, its times in _records (see perfmon._core); turned back into
        # objects when read.
        self._ops: list[OperationMetrics | str] = []
        self._records: list[Any] = []
        # The decorators append without the lock: list.append is atomic (under the GIL, and
        # per list in free-threaded builds), and readers copy the list in one call. Taking the
        # lock there cost about a fifth of a decorated call.
        self._append = self._ops.append
        self._calls: list[ApiCall] = []
        self._anchor = Anchor()
        self._sequence = 0  # of the latest snapshot; see _next_sequence
        self.start_ns = self._anchor.perf_ns
        if start_time is not None:
            self.start_ns = self._anchor.to_ns(start_time)
        self.end_ns: int | None = None
        #: The process's peak resident memory at the session's end, in bytes (the
        #: high-water mark since the process started); None while running or if unknown.
        self.peak_memory_bytes: int | None = None

        self.cache_hits = 0
        self.cache_misses = 0
        self._cache_by_name: dict[str, list[int]] = {}
        self.api_calls = 0
        self.api_errors = 0
        self.total_tokens_used = 0
        self.estimated_api_cost = 0.0  # caller costs plus the built-in table's estimates
        self.unpriced_api_calls = 0  # neither a caller cost nor a local estimate
        self.table_priced_api_calls = 0  # estimated from the built-in table, sent as null
        self._recording_ns = 0  # time spent inside record_api_call (see perfmon._health)
        # Values replaced by a stand-in or cut to a limit: when calls were recorded, and in
        # the payload built last (perfmon._wire.fitted; the SDK report carries the sum).
        self._fitted_on_record = 0
        self.fitted_in_payload = 0
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
            self.peak_memory_bytes = peak_rss_bytes()
            return True

    # -- recording ---------------------------------------------------------------------------

    @property
    def operations(self) -> list[OperationMetrics]:
        """A copy of the recorded operations, in start order (running ones included)."""
        with self._lock:
            return self._objects()

    def _objects(self) -> list[OperationMetrics]:
        """The operations as objects; each record becomes its OperationMetrics once, kept in
        its place so that every read sees the same objects (the caller holds the lock)."""
        ops = self._ops
        built = list(ops)
        if all(isinstance(entry, OperationMetrics) for entry in built):
            return built  # type: ignore[return-value]
        records = record_map(self._records[:])
        for index, entry in enumerate(built):
            if not isinstance(entry, OperationMetrics):
                op = built[index] = from_record(entry, records[index], self, built, index)
                if ops[index] is entry:
                    ops[index] = op
        return built  # type: ignore[return-value]

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
        """Hits as a fraction of lookups, 0.0 to 1.0 (0.75 for 3 hits and 1 miss); 0.0 with
        no lookups."""
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else 0.0

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
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
        latency_s: float | None = None,
        time_to_first_token_s: float | None = None,
        streamed: bool = False,
        attempts: int | None = None,
        prompt: Any = None,
        error_message: str | None = None,
    ) -> ApiCall:
        """Record one LLM API call. See ``PerformanceMonitor.record_api_call``."""
        fields = dict(locals())
        del fields["self"], fields["tokens_used"], fields["cost"], fields["error"]
        return self._record_api_call(self._current_operation(), tokens_used, cost, error, fields)

    def _record_api_call(
        self,
        op: OperationMetrics | None,
        tokens_used: int,
        cost: float | None,
        error: bool | str | BaseException,
        fields: dict[str, Any],
    ) -> ApiCall:
        began = time.perf_counter_ns()
        fits_before = _wire.fits()
        call = new_call(op, tokens_used, cost, error, fields)
        with self._lock:
            self._add_call(call)
            self._recording_ns += time.perf_counter_ns() - began
            self._fitted_on_record += _wire.fits() - fits_before
        return call

    def _add_call(self, call: ApiCall) -> None:
        """Count a call in (the caller holds the lock)."""
        self._calls.append(call)
        self.api_calls += 1
        self.total_tokens_used += call.total_tokens
        if call.error:
            self.api_errors += 1
        cost = call.local_cost_usd
        if cost is None:
            self.unpriced_api_calls += 1
        else:
            self.estimated_api_cost += cost
            if call.cost_usd is None:
                self.table_priced_api_calls += 1

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
        """Self time (own time minus children's, parallelism merged) per operation name, as a
        share of the session's wall time (for a running session: up to its latest finished
        operation)."""
        ops = self.operations
        return _analysis.self_time_by_name(ops, _analysis.wall_ns(self.start_ns, self.end_ns, ops))

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
    def slowest_operations(self) -> list[OperationMetrics]:
        """The five longest finished operations, longest first."""
        return _analysis.slowest(self.operations, 5)

    # -- output ------------------------------------------------------------------------------

    def _operation_ids(self) -> dict[int, str]:
        with self._lock:
            return {id(op): f"o{i}" for i, op in enumerate(self._ops, 1)
                    if isinstance(op, OperationMetrics)}

    def to_dict(self) -> dict[str, Any]:
        """The schema-v1 payload for this session (exactly the documented top-level keys).

        ``fitted_in_payload`` then says how many of its values were replaced by a marked
        stand-in or cut to the server's limits."""
        fits_before = _wire.fits()
        session, ops, flat_records, calls = self._wire_snapshot()
        records = record_map(flat_records)
        anchor = self._anchor
        ids = {id(op): f"o{i}" for i, op in enumerate(ops, 1)
               if isinstance(op, OperationMetrics)}
        payload = {
            "schema_version": SCHEMA_VERSION,
            "session": session,
            "operations": [
                op._wire(ids, anchor) if isinstance(op, OperationMetrics)
                else record_wire(op, records[i], i, ids, anchor)
                for i, op in enumerate(ops)
            ],
            "api_calls": [call._wire(i, ids, anchor) for i, call in enumerate(calls, 1)],
        }
        self.fitted_in_payload = _wire.fits() - fits_before + self._fitted_on_record
        return payload

    def _wire_snapshot(self) -> tuple[dict[str, Any], list[Any], list[Any], list[ApiCall]]:
        """One consistent reading for a payload: the ``session`` object of the schema-v1
        payload (its values fitted, and counted on this thread), the operations in start
        order (objects and records' names), the flat ``_records`` list covering every record
        among them, and the API calls."""
        with self._lock:
            ops = list(self._ops)
            records = self._records[:]  # after ops: it covers every record there
            calls = list(self._calls)
            counters = dict(self.counters)
            by_name = {k: {"hits": v[0], "misses": v[1]} for k, v in self._cache_by_name.items()}
            hits, misses = self.cache_hits, self.cache_misses
            status, end_ns = self.status, self.end_ns
            peak_memory = self.peak_memory_bytes if end_ns is not None else peak_rss_bytes()
            sequence = self._next_sequence()
        anchor = self._anchor
        session: dict[str, Any] = {"id": self.session_id, "sequence": sequence}
        if self.episode is not None:
            session["episode"] = self.episode
        # Cut to the server's column sizes (the schema itself allows 255 characters).
        for key, limit in _wire.SESSION_TEXT_LIMITS:
            value = _wire.text(getattr(self, key), limit)
            if value is not None:
                session[key] = value
        by_name = dict(list(by_name.items())[:_wire.MAX_KEYS])
        session.update(
            status=status,
            started_at=anchor.to_datetime(self.start_ns).isoformat(),
            ended_at=None if end_ns is None else anchor.to_datetime(end_ns).isoformat(),
            cache={"hits": hits, "misses": misses,
                   "by_name": {_wire.name(k): v for k, v in by_name.items()}},
            counters={_wire.name(k): _wire.count(v)
                      for k, v in _wire.mapping(counters).items()},
            tags=[_wire.name(tag) for tag in self.tags if tag][:_wire.MAX_TAGS],
            metadata=fit_metadata(self.metadata, SESSION_METADATA_BYTES),
        )
        if peak_memory is not None:
            session["peak_memory_bytes"] = peak_memory
        return session, ops, records, calls

    def _next_sequence(self) -> int:
        """A number that grows with every snapshot, so the server can tell a late older
        snapshot from a newer one. Wall-clock nanoseconds, never below the last one plus one:
        a resend from a restarted process still orders after what it sent before."""
        self._sequence = max(self._sequence + 1, time.time_ns())
        return self._sequence

    @classmethod
    def from_dict(
        cls,
        payload: dict[str, Any],
        *,
        bottleneck_threshold: float = DEFAULT_BOTTLENECK_THRESHOLD,
    ) -> PerformanceMetrics:
        """The session a schema-v1 payload describes (e.g. one read back from a server), so
        that its summary reads as ``get_summary()`` printed it. A call's ``cost_usd`` counts
        when it is a number; a null cost counts as a call not priced here."""
        fields = payload["session"]
        metrics = cls(fields["id"], datetime.fromisoformat(fields["started_at"]),
                      episode=fields.get("episode"), workflow=fields.get("workflow"),
                      release=fields.get("release"), environment=fields.get("environment"),
                      host=fields.get("host"), tags=fields.get("tags"),
                      metadata=fields.get("metadata"),
                      bottleneck_threshold=bottleneck_threshold)
        anchor = metrics._anchor
        if fields.get("ended_at"):
            metrics.end_ns = anchor.to_ns(datetime.fromisoformat(fields["ended_at"]))
            metrics.status = fields.get("status") or "completed"
        metrics._restore_cache(fields.get("cache") or {})
        metrics.counters = dict(fields.get("counters") or {})
        by_id = metrics._restore_operations(payload.get("operations") or [])
        for wire in payload.get("api_calls") or []:
            op = by_id.get(wire.get("operation_id") or "")
            metrics._add_call(ApiCall.from_dict(wire, anchor, op))
        return metrics

    def _restore_cache(self, cache: dict[str, Any]) -> None:
        self.cache_hits, self.cache_misses = cache.get("hits", 0), cache.get("misses", 0)
        self._cache_by_name = {
            name: [counts.get("hits", 0), counts.get("misses", 0)]
            for name, counts in (cache.get("by_name") or {}).items()
        }

    def _restore_operations(self, wires: list[dict[str, Any]]) -> dict[str, OperationMetrics]:
        by_id = {wire["id"]: OperationMetrics.from_dict(wire, self._anchor) for wire in wires}
        for wire in wires:
            parent = by_id.get(wire.get("parent_id") or "")
            by_id[wire["id"]]._attach(self, parent)
        self._ops[:] = by_id.values()
        for index, op in enumerate(self._ops):
            op._index = index  # type: ignore[union-attr]
        return by_id

    def get_summary(self) -> str:
        """A human-readable report of the session."""
        return _summary.render(self)

    def __repr__(self) -> str:
        return f"<PerformanceMetrics {self.session_id!r} {self.status} ops={len(self._ops)}>"


def summary_from_payload(
    payload: dict[str, Any], *, bottleneck_threshold: float | None = None
) -> str:
    """The summary of a schema-v1 payload, as ``get_summary()`` printed it for the session."""
    threshold = DEFAULT_BOTTLENECK_THRESHOLD if bottleneck_threshold is None else (
        bottleneck_threshold
    )
    return PerformanceMetrics.from_dict(payload, bottleneck_threshold=threshold).get_summary()
