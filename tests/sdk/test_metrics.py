"""The original OperationMetrics / PerformanceMetrics behaviour, kept as public API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from perfmon import OperationMetrics, PerformanceMetrics
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)


def test_operation_finish_measures_duration_with_aware_timestamps():
    op = OperationMetrics(operation_name="scene_generation", start_time=datetime.now(UTC))
    time.sleep(0.02)
    op.finish()

    assert op.success is True and op.error is None
    assert 0.015 < op.duration_seconds < 0.5
    assert op.start_time.tzinfo is not None and op.end_time.tzinfo is not None
    assert op.end_time - op.start_time == pytest.approx(
        timedelta(seconds=op.duration_seconds), abs=timedelta(milliseconds=2)
    )


def test_operation_finish_records_failure_and_keeps_first_end_time():
    op = OperationMetrics("call_llm")
    op.finish(success=False, error="timeout")
    first_end = op.end_ns
    op.finish(success=False, error="timeout again")

    assert op.success is False
    assert op.error == "timeout again"
    assert op.end_ns == first_end


def test_operation_built_from_explicit_times_and_metadata():
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    op = OperationMetrics(
        "scene_generation", start_time=start, duration_seconds=5.23, metadata={"scene": 3}
    )

    assert op.duration_seconds == pytest.approx(5.23)
    assert op.start_time == pytest.approx(start, abs=timedelta(milliseconds=1))
    assert op.metadata == {"scene": 3}
    wire = op.to_dict()
    assert wire["name"] == "scene_generation"
    assert wire["duration_s"] == pytest.approx(5.23)
    assert wire["metadata"] == {"scene": 3}
    assert wire["started_at"].endswith("+00:00")


def test_metadata_is_created_on_first_use():
    op = OperationMetrics("x")
    assert op._extra is None
    op.metadata["scene"] = 1
    assert op.to_dict()["metadata"] == {"scene": 1}


def test_three_hits_and_one_miss_is_a_75_percent_hit_rate():
    metrics = PerformanceMetrics("s1")
    for _ in range(3):
        metrics.record_cache_hit()
    metrics.record_cache_miss()

    assert (metrics.cache_hits, metrics.cache_misses) == (3, 1)
    assert metrics.cache_hit_rate == 0.75  # a fraction, as in the original design


def test_hit_rate_without_lookups_is_zero():
    assert PerformanceMetrics("s1").cache_hit_rate == 0.0


def test_cache_counts_per_cache_name():
    metrics = PerformanceMetrics("s1")
    metrics.record_cache_hit("llm")
    metrics.record_cache_hit("llm")
    metrics.record_cache_miss("embeddings")
    metrics.record_cache_hit()

    assert metrics.cache_by_name == {
        "llm": {"hits": 2, "misses": 0},
        "embeddings": {"hits": 0, "misses": 1},
    }
    assert (metrics.cache_hits, metrics.cache_misses) == (3, 1)


def test_tokens_and_cost_accumulate_over_api_calls():
    metrics = PerformanceMetrics("s1")
    metrics.record_api_call(tokens_used=1000, cost=0.01)
    metrics.record_api_call(tokens_used=450, cost=0.0045)
    metrics.record_api_call(tokens_used=0, cost=0.0, error=True)

    assert metrics.api_calls == 3
    assert metrics.api_errors == 1
    assert metrics.total_tokens_used == 1450
    assert metrics.estimated_api_cost == pytest.approx(0.0145)


def test_named_generation_counters_are_views_of_open_ended_counters():
    metrics = PerformanceMetrics("s1")
    metrics.increment("scenes_generated", 9)
    metrics.scenes_generated += 1
    metrics.increment("dialogue_lines_generated", 127)
    metrics.stage_directions_generated = 89
    metrics.jokes_analyzed = 23
    metrics.increment("beats_written", 4)

    assert metrics.scenes_generated == 10
    assert metrics.counters == {
        "scenes_generated": 10,
        "dialogue_lines_generated": 127,
        "stage_directions_generated": 89,
        "jokes_analyzed": 23,
        "beats_written": 4,
    }


def test_slowest_operations_are_the_top_five_longest():
    metrics = PerformanceMetrics("s1")
    for index, seconds in enumerate([0.5, 3.0, 0.1, 2.0, 5.23, 1.0, 4.0]):
        metrics.add_operation(OperationMetrics(f"op{index}", duration_seconds=seconds))

    slowest = metrics.slowest_operations
    assert all(isinstance(op, OperationMetrics) for op in slowest)
    assert [(op.operation_name, op.duration_seconds) for op in slowest] == [
        ("op4", pytest.approx(5.23)),
        ("op6", pytest.approx(4.0)),
        ("op1", pytest.approx(3.0)),
        ("op3", pytest.approx(2.0)),
        ("op5", pytest.approx(1.0)),
    ]


def test_finish_sets_end_time_once_and_status():
    metrics = PerformanceMetrics("s1")
    assert metrics.total_duration_seconds is None and metrics.status == "running"
    metrics.finish()
    first = metrics.end_time
    metrics.finish(success=False)

    assert metrics.status == "completed"
    assert metrics.end_time == first
    assert metrics.total_duration_seconds >= 0
    assert metrics.end_time.tzinfo is not None


def test_failed_session_status():
    assert PerformanceMetrics("s1").finish(success=False).status == "failed"


def test_add_operation_does_not_record_the_same_operation_twice():
    metrics = PerformanceMetrics("s1")
    op = OperationMetrics("x", duration_seconds=1.0)
    metrics.add_operation(op)
    metrics.add_operation(op)
    assert metrics.operations == [op]


def test_empty_session_id_is_refused():
    with pytest.raises(ValueError):
        PerformanceMetrics("")
