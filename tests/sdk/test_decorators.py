"""@monitor_performance / @monitor_async_performance and ``monitor.operation()``."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from perfmon import get_performance_monitor, monitor_async_performance, monitor_performance
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@monitor_performance("scene_generation")
def generate_scene(seconds: float) -> str:
    time.sleep(seconds)
    return "INT. WRITERS ROOM - DAY"


@monitor_performance
def punch_up(line: str) -> str:
    return line.upper()


@monitor_performance("call_llm")
def failing_call() -> None:
    raise TimeoutError("provider took too long")


@monitor_async_performance("async_scene")
async def generate_scene_async(seconds: float) -> int:
    await asyncio.sleep(seconds)
    return 3


@monitor_performance
async def auto_async() -> str:
    await asyncio.sleep(0)
    return "async"


def test_sync_decorator_times_the_call_and_returns_its_result():
    with monitor.session("ep001") as session:
        assert generate_scene(0.05) == "INT. WRITERS ROOM - DAY"

    (op,) = session.operations
    assert op.name == "scene_generation"
    assert op.success is True
    assert 0.045 <= op.duration_seconds < 0.5


def test_bare_decorator_is_named_after_the_function_and_keeps_its_metadata():
    with monitor.session("ep001") as session:
        assert punch_up("yes, and") == "YES, AND"

    assert [op.name for op in session.operations] == ["punch_up"]
    assert punch_up.__name__ == "punch_up"
    assert punch_up.__wrapped__("x") == "X"


def test_errors_are_recorded_and_re_raised():
    with monitor.session("ep001") as session:
        with pytest.raises(TimeoutError, match="too long"):
            failing_call()

    (op,) = session.operations
    assert op.success is False
    assert op.error == "TimeoutError: provider took too long"
    assert op.duration_seconds is not None


async def test_async_decorator_times_the_awaited_work():
    async with monitor.session("ep001") as session:
        assert await generate_scene_async(0.05) == 3

    (op,) = session.operations
    assert op.name == "async_scene"
    assert 0.045 <= op.duration_seconds < 0.5


async def test_coroutine_functions_get_the_async_wrapper_automatically():
    assert asyncio.iscoroutinefunction(auto_async)
    async with monitor.session("ep001") as session:
        assert await auto_async() == "async"
    assert [op.name for op in session.operations] == ["auto_async"]
    assert session.operations[0].finished


async def test_async_errors_are_recorded_and_re_raised():
    @monitor_performance
    async def broken() -> None:
        await asyncio.sleep(0)
        raise ValueError("no punchline")

    async with monitor.session("ep001") as session:
        with pytest.raises(ValueError):
            await broken()
    assert session.operations[0].error == "ValueError: no punchline"


def test_methods_can_be_decorated():
    class Writer:
        def __init__(self) -> None:
            self.drafts = 0

        @monitor_performance("draft")
        def draft(self) -> int:
            self.drafts += 1
            return self.drafts

    writer = Writer()
    with monitor.session("ep001") as session:
        assert writer.draft() == 1
        assert writer.draft() == 2
    assert [op.name for op in session.operations] == ["draft", "draft"]


def test_calls_outside_any_session_run_unrecorded():
    assert punch_up("a") == "A"
    with monitor.session("ep001") as session:
        pass
    assert session.operations == []
    assert monitor.get_current_metrics() is None


def test_operation_context_manager_records_metadata_and_failures():
    with monitor.session("ep001") as session:
        with monitor.operation("scene_generation", scene=3) as op:
            op.metadata["beats"] = 4
        with pytest.raises(KeyError):
            with monitor.operation("lookup"):
                raise KeyError("missing")

    first, second = session.operations
    assert first.metadata == {"scene": 3, "beats": 4}
    assert first.success
    assert second.success is False and second.error == "KeyError: 'missing'"


async def test_operation_context_manager_works_with_async_with():
    async with monitor.session("ep001") as session:
        async with monitor.operation("outline") as op:
            await asyncio.sleep(0.02)
    assert session.operations == [op]
    assert op.duration_seconds >= 0.015


def test_operation_without_metadata_allocates_no_side_object():
    with monitor.session("ep001") as session:
        with monitor.operation("plain"):
            pass
        punch_up("x")
    assert all(op._extra is None for op in session.operations)


def test_disabled_decorators_and_calls_do_nothing_but_run_the_function():
    with monitor.session("ep001") as session:
        monitor.disable()
        try:
            assert punch_up("x") == "X"
            with pytest.raises(TimeoutError):
                failing_call()
            with monitor.operation("ignored", a=1) as op:
                op.metadata["b"] = 2  # a throwaway dict, shared by nobody
            monitor.record_cache_hit()
            assert monitor.record_api_call(tokens_used=10) is None
            monitor.increment("scenes_generated")
        finally:
            monitor.enable()
        punch_up("recorded")

    assert [op.name for op in session.operations] == ["punch_up"]
    assert (session.cache_hits, session.api_calls, session.scenes_generated) == (0, 0, 0)


def test_disabled_wrapper_adds_only_a_flag_check():
    # The disabled path must not touch the context or allocate an operation: it calls the
    # function straight away, so the wrapped function sees no current operation either.
    seen = []

    @monitor_performance
    def probe() -> None:
        seen.append(monitor.get_current_metrics())

    monitor.disable()
    try:
        with monitor.session("ep001") as session:
            probe()
    finally:
        monitor.enable()
    assert session.operations == []
    assert seen == [None]  # disabled sessions do not even become current


def test_decorating_keeps_wraps_metadata_for_introspection():
    def original(a: int, b: int = 2) -> int:
        """Adds."""
        return a + b

    wrapped = monitor_performance("add")(original)
    assert wrapped.__doc__ == "Adds."
    assert wrapped.__wrapped__ is original
    assert functools.partial(wrapped, 1)() == 3
