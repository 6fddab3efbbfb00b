"""A finished decorated call that nothing else holds is kept as a record of untracked atoms and
read back as the same OperationMetrics it would have been (see perfmon._core)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref

import pytest

from perfmon import OperationMetrics, get_performance_monitor, monitor_performance
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@monitor_performance("line")
def line() -> int:
    return 1


@monitor_performance("scene")
def scene(lines: int = 3) -> None:
    for _ in range(lines):
        line()


def is_record(entry: object) -> bool:
    return not isinstance(entry, OperationMetrics)


def test_the_import_time_check_finds_reference_counts_the_wrappers_can_trust():
    from perfmon import _core

    assert _core._check_records()
    assert _core._SOLE is not None


def test_plain_calls_leave_records_the_collector_does_not_track():
    with monitor.session("ep001") as session:
        for _ in range(1000):
            line()
    assert all(is_record(entry) for entry in session._ops)
    assert not any(gc.is_tracked(item) for item in session._ops + session._records)


def test_records_read_back_as_operation_objects_with_their_parents():
    with monitor.session("ep001") as session:
        with monitor.operation("episode"):
            scene()
        line()
    ops = session.operations
    assert all(isinstance(op, OperationMetrics) for op in ops)
    assert [op.operation_name for op in ops] == ["episode", "scene", "line", "line", "line",
                                                 "line"]
    episode, scene_op, *lines, top = ops
    assert episode.parent is None and scene_op.parent is episode
    assert all(op.parent is scene_op for op in lines) and top.parent is None
    assert all(op.finished and op.success and op.error is None for op in ops)
    assert all(op.duration_ns >= 0 and op.metadata == {} for op in ops)
    assert scene_op.start_ns <= lines[0].start_ns <= lines[-1].end_ns <= scene_op.end_ns
    assert [item.name for item in session.self_time_by_name()]  # the analysis reads them


def test_every_read_sees_the_same_objects_and_changes_to_them_stay():
    with monitor.session("ep001") as session:
        scene()
    first = session.operations
    assert all(a is b for a, b in zip(first, session.operations, strict=True))
    first[1].metadata["line"] = 1
    assert session.to_dict()["operations"][1]["metadata"] == {"line": 1}
    assert session.slowest_operations[0] in first


def test_the_payload_is_the_same_before_and_after_the_records_are_read():
    with monitor.session("ep001") as session:
        with monitor.operation("episode", number=1):
            scene()
            line()
    before = session.to_dict()["operations"]
    assert any(is_record(entry) for entry in session._ops)
    session.operations  # noqa: B018  (turns the records into objects)
    assert not any(is_record(entry) for entry in session._ops)
    assert session.to_dict()["operations"] == before
    assert [op["parent_id"] for op in before] == [None, "o1", "o2", "o2", "o2", "o1"]


def test_an_operation_something_else_holds_stays_that_object():
    seen = []

    @monitor_performance("held")
    def held() -> None:
        seen.append(session.operations[-1])  # the running operation, as a caller sees it

    with monitor.session("ep001") as session:
        held()
    (op,) = session.operations
    assert op is seen[0]
    assert op.finished and op.success


def test_cache_counts_and_errors_keep_their_operation_object():
    @monitor_performance("cached")
    def cached() -> None:
        monitor.record_cache_hit("llm")

    @monitor_performance("failing")
    def failing() -> None:
        raise ValueError("no scene")

    with monitor.session("ep001") as session:
        cached()
        with pytest.raises(ValueError):
            failing()
    assert not any(is_record(entry) for entry in session._ops)
    hit, failed = session.operations
    assert hit.cache_hits == 1
    assert not failed.success and failed.error == "ValueError: no scene"


def test_an_api_call_inside_keeps_its_operation():
    @monitor_performance("call")
    def call() -> None:
        monitor.record_api_call(10, 0.001)

    with monitor.session("ep001") as session:
        call()
    (op,) = session.operations
    assert session.api_call_records[0].operation is op
    assert session.to_dict()["api_calls"][0]["operation_id"] == "o1"


def test_the_spare_operation_does_not_keep_a_finished_session_alive():
    with monitor.session("ep001") as session:
        scene()
    ref = weakref.ref(session)
    monitor.clear_history()
    del session
    gc.collect()
    assert ref() is None


def test_threads_recording_into_one_session_keep_every_call_and_parent():
    with monitor.session("ep001") as session:
        def work() -> None:
            with monitor.operation("worker"):
                for _ in range(200):
                    scene(2)

        threads = [threading.Thread(target=contextvars.copy_context().run, args=(work,))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ops = session.operations
    assert len(ops) == 4 * (1 + 200 * 3)
    by_name = {name: [op for op in ops if op.operation_name == name]
               for name in ("worker", "scene", "line")}
    assert len(by_name["scene"]) == 800 and len(by_name["line"]) == 1600
    assert all(op.parent in by_name["worker"] for op in by_name["scene"])
    assert all(op.parent in by_name["scene"] for op in by_name["line"])
    assert all(op.parent.start_ns <= op.start_ns <= op.end_ns <= op.parent.end_ns
               for op in by_name["line"])


def test_async_calls_leave_records_unless_a_task_started_inside_holds_them():
    @monitor_performance("leaf_async")
    async def leaf() -> int:
        return 1

    @monitor_performance("fan_out")
    async def fan_out() -> None:
        await asyncio.gather(leaf(), leaf())

    async def episode() -> None:
        async with monitor.session("ep001") as session:
            await leaf()
            await fan_out()
        return session

    session = asyncio.run(episode())
    assert is_record(session._ops[0])
    ops = session.operations
    assert [op.operation_name for op in ops] == ["leaf_async", "fan_out", "leaf_async",
                                                 "leaf_async"]
    assert ops[0].parent is None and ops[2].parent is ops[1] and ops[3].parent is ops[1]
    assert all(op.finished for op in ops)


def test_an_operation_is_found_from_the_end_when_another_thread_appended_first():
    from perfmon import _core

    op = _core.new_operation("late", None)
    ops = ["a", op, "b", "c"]  # appended after len() was read by the other thread
    assert _core._find(ops, op) == 1
