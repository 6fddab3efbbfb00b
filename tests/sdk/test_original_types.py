"""Code written against the original monitor runs unchanged: cache_hit_rate is a fraction and
slowest_operations a list of OperationMetrics, longest first."""

from __future__ import annotations

import pytest

from perfmon import OperationMetrics, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

MS = 1_000_000


def original_generator() -> object:
    """The original design's calls, as a generator written against it makes them."""
    monitor = get_performance_monitor()
    metrics = monitor.start_session("ep001_original")
    for _ in range(3):
        monitor.record_cache_hit()
    monitor.record_cache_miss()
    for name, seconds in (("dialogue", 0.2), ("scene_generation", 0.9), ("jokes", 0.5)):
        op = monitor.start_operation(name)
        monitor.end_operation(op)
        op.end_ns = op.start_ns + round(seconds * 1e9)  # a known duration, no sleeping
    monitor.record_api_call(830, 0.0042, False)
    monitor.end_session()
    return metrics


def test_the_hit_rate_is_a_fraction_and_the_summary_prints_a_percentage():
    metrics = original_generator()
    assert isinstance(metrics.cache_hit_rate, float)
    assert metrics.cache_hit_rate == 0.75
    assert f"{metrics.cache_hit_rate:.1%}" == "75.0%"
    assert "  Hit Rate: 75.0% (3 hits, 1 misses)" in metrics.get_summary().splitlines()


def test_slowest_operations_are_operation_objects_longest_first():
    slowest = original_generator().slowest_operations
    assert all(isinstance(op, OperationMetrics) for op in slowest)
    assert [op.operation_name for op in slowest] == ["scene_generation", "jokes", "dialogue"]
    assert slowest[0].duration_seconds == pytest.approx(0.9)
    assert slowest[0].success and slowest[0].error is None
