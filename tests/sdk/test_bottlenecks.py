"""Bottlenecks from self time, grouped by name, with parallel work counted once."""

from __future__ import annotations

import asyncio

import pytest

from perfmon import OperationMetrics, PerformanceMetrics, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()
MS = 1_000_000


def session_of(total_ms: int, threshold: float = 0.2) -> PerformanceMetrics:
    session = PerformanceMetrics("ep001", bottleneck_threshold=threshold)
    session.end_ns = session.start_ns + total_ms * MS
    session.status = "completed"
    return session


def add(session: PerformanceMetrics, name: str, start_ms: int, end_ms: int,
        parent: OperationMetrics | None = None) -> OperationMetrics:
    """An operation at exact offsets from the session start (no sleeping)."""
    op = OperationMetrics(name)
    op._owner = session
    op._parent = parent if parent is not None else session
    op.start_ns = session.start_ns + start_ms * MS
    op.end_ns = session.start_ns + end_ms * MS
    session._ops.append(op)
    return op


def shares(session: PerformanceMetrics) -> dict[str, float]:
    return {item.name: round(item.share, 3) for item in session.self_time_by_name()}


def test_a_single_operation_over_20_percent_is_a_bottleneck():
    session = session_of(1000)
    add(session, "scene_generation", 0, 300)
    add(session, "joke_analysis", 300, 400)
    add(session, "exact_limit", 400, 600)

    assert [b.name for b in session.bottlenecks()] == ["scene_generation"]
    assert session.bottleneck_warnings == [
        "scene_generation: 0.30s self time (30.0% of session) in 1 call"
    ]


def test_a_wrapping_operation_is_not_flagged_for_containing_the_others():
    session = session_of(1000)
    root = add(session, "generate_full_script", 0, 1000)
    for start in (100, 300, 500, 700):
        add(session, "scene", start, start + 200, parent=root)

    assert shares(session) == {"scene": 0.8, "generate_full_script": 0.2}
    assert [b.name for b in session.bottlenecks()] == ["scene"]
    # with a lower threshold the wrapper's own 20% does count
    assert [b.name for b in session.bottlenecks(threshold=0.1)] == [
        "scene", "generate_full_script"
    ]


def test_parallel_children_count_no_more_than_the_wall_time_they_cover():
    session = session_of(1000)
    root = add(session, "generate_full_script", 0, 1000)
    for _ in range(10):
        add(session, "scene", 100, 900, parent=root)

    assert shares(session) == {"scene": 0.8, "generate_full_script": 0.2}
    (scene,) = session.bottlenecks()
    assert scene.calls == 10 and scene.self_s == pytest.approx(0.8)


def test_overlapping_children_and_grandchildren_leave_the_right_self_time():
    session = session_of(1000)
    root = add(session, "episode", 0, 1000)
    a = add(session, "scene", 100, 500, parent=root)
    add(session, "scene", 300, 700, parent=root)  # overlaps a
    add(session, "llm", 150, 450, parent=a)

    # episode: 1000 - union(100..700) = 400 ms. scene: the first one minus its llm call
    # leaves 100..150 and 450..500; the second runs its own code over 300..700, so the
    # union is 50 + 400 = 450 ms. llm: 300 ms.
    assert shares(session) == {"episode": 0.4, "scene": 0.45, "llm": 0.3}


def test_calls_are_grouped_by_name():
    session = session_of(1000)
    for start in (0, 200, 400):
        add(session, "call_llm", start, start + 100)  # 10% each, 30% together

    assert [(b.name, b.calls) for b in session.bottlenecks()] == [("call_llm", 3)]


def test_running_operations_are_ignored():
    session = session_of(1000)
    op = add(session, "still_running", 0, 900)
    op.end_ns = None
    assert session.bottlenecks() == []


def test_threshold_comes_from_the_monitor_and_the_summary_agrees():
    monitor.bottleneck_threshold = 0.5
    with monitor.session("ep001") as session:
        pass
    session.end_ns = session.start_ns + 1000 * MS
    add(session, "scene", 0, 600)
    add(session, "llm", 600, 900)

    assert session.bottleneck_threshold == 0.5
    assert [b.name for b in session.bottlenecks()] == ["scene"]
    summary = session.get_summary()
    warnings = summary.split("Bottleneck Warnings (self time above 50% of the session):\n")[1]
    assert warnings.splitlines()[0] == "  scene: 0.60s self time (60.0% of session) in 1 call"
    assert "llm:" not in warnings


async def test_gathered_children_measured_for_real_are_not_over_counted():
    async def child() -> None:
        async with monitor.operation("child"):
            await asyncio.sleep(0.1)

    async with monitor.session("ep001") as session:
        async with monitor.operation("outer"):
            await asyncio.gather(*(child() for _ in range(5)))

    by_name = {b.name: b for b in session.self_time_by_name()}
    assert 0.5 < by_name["child"].share <= 1.0  # five 0.1 s sleeps cover ~0.1 s, not 0.5 s
    assert by_name["outer"].share < 0.2
    assert [b.name for b in session.bottlenecks()] == ["child"]
