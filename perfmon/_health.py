"""The SDK's report on itself, sent with each session as ``session.sdk``.

A producer looking at a session should see when data is missing and why (payloads dropped,
spooled, refused) and what recording cost the generator. Timing every decorated call twice
more would add to the very cost being reported, so the per-operation cost is measured once
per process, on the exporter's thread, and multiplied by the session's operations; the time
spent inside ``record_api_call`` (hashing prompts, pricing) is measured call by call.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from perfmon import _core
from perfmon._version import __version__

COUNT_KEYS = ("sent", "retried", "spooled", "resent", "dropped", "rejected", "quarantined",
              "spool_errors")
_CALIBRATION_CALLS = 1000
_CALIBRATION_ROUNDS = 3

_lock = threading.Lock()
_operation_cost_ns: float | None = None


class _ScratchSession:
    """Just enough of a session for the decorator to record into."""

    __slots__ = ("_owner", "_lock", "_ops", "_append", "_records")

    def __init__(self) -> None:
        self._owner = self
        self._lock = threading.Lock()
        self._ops: list[Any] = []
        self._append = self._ops.append
        self._records: list[Any] = []


def _noop() -> None:
    return None


def _measure() -> float:
    """Nanoseconds one decorated call costs beyond the call itself (best of a few rounds)."""
    wrapped = _core._sync_wrapper(_noop, "perfmon.calibration")
    _core.current.set(_ScratchSession())  # in the fresh context this runs in
    best = float("inf")
    for _ in range(_CALIBRATION_ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(_CALIBRATION_CALLS):
            _noop()
        bare = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        for _ in range(_CALIBRATION_CALLS):
            wrapped()
        best = min(best, (time.perf_counter_ns() - start - bare) / _CALIBRATION_CALLS)
    return max(best, 0.0)


def operation_cost_ns() -> float:
    """What recording one decorated call costs in this process, measured on first use."""
    global _operation_cost_ns
    with _lock:
        if _operation_cost_ns is not None:
            return _operation_cost_ns
        measured = contextvars.Context().run(_measure)
        if _core._enabled:  # disabled, the wrapper only checks a flag: measure again later
            _operation_cost_ns = measured
        return measured


def report(session: Any, counts: dict[str, int]) -> dict[str, Any]:
    """``session.sdk``: the exporter's counts so far, and what recording this session cost."""
    operations = len(session._ops)
    overhead_ns = operations * operation_cost_ns() + session._recording_ns
    return {
        "version": __version__,
        **{key: counts.get(key, 0) for key in COUNT_KEYS},
        "operations": operations,
        "recording_overhead_s": round(overhead_ns / 1e9, 6),
        "fitted": getattr(session, "fitted_in_payload", 0),
    }
