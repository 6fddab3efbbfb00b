"""PerformanceMonitor: the original session/operation API, sessions as context managers,
history, the process-wide singleton and the on/off switch."""

from __future__ import annotations

import json

import pytest

import perfmon
from perfmon import PerformanceMonitor, get_performance_monitor, monitor_performance
from tests.sdk.helpers import isolated_perfmon, run_python  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@monitor_performance("scene_generation")
def generate_scene() -> None:
    monitor.record_cache_hit()


def test_get_performance_monitor_returns_one_process_wide_monitor():
    assert get_performance_monitor() is get_performance_monitor()
    assert isinstance(get_performance_monitor(), PerformanceMonitor)


def test_start_and_end_session_record_decorated_calls_original_api():
    started = monitor.start_session("ep001_script_gen")
    assert monitor.get_current_metrics() is started
    assert monitor.current_session is started
    generate_scene()
    generate_scene()
    ended = monitor.end_session()

    assert ended is started
    assert ended.status == "completed"
    assert [op.name for op in ended.operations] == ["scene_generation", "scene_generation"]
    assert ended.cache_hits == 2
    assert monitor.get_current_metrics() is None
    assert monitor.get_session_history() == [ended]


def test_end_session_without_a_session_returns_none():
    assert monitor.end_session() is None


def test_start_and_end_operation_original_api():
    session = monitor.start_session("ep001")
    op = monitor.start_operation("outline", {"acts": 3})
    generate_scene()  # nested: the manual operation is current
    monitor.end_operation(op, success=False, error="act two sags")
    generate_scene()  # back at the top level
    monitor.end_session()

    outline, inner, after = session.operations
    assert outline.name == "outline" and outline.metadata == {"acts": 3}
    assert (outline.success, outline.error) == (False, "act two sags")
    assert inner.parent is outline
    assert after.parent is None


def test_end_operation_adds_an_operation_timed_outside_any_session():
    op = monitor.start_operation("warm_up")
    session = monitor.start_session("ep001")
    monitor.end_operation(op)
    monitor.end_session()
    assert session.operations == [op]


def test_session_context_manager_owns_the_outermost_operation():
    # In the original design a decorated generate_full_script started the session inside
    # its own operation, so the outermost operation was never recorded.
    @monitor_performance
    def generate_full_script() -> None:
        generate_scene()

    with monitor.session("ep001", episode="ep001", workflow="script_generation",
                         release="generator 1.4.2", tags=["pilot"]) as session:
        generate_full_script()

    outer, inner = session.operations
    assert outer.name == "generate_full_script" and outer.parent is None
    assert inner.parent is outer
    payload = session.to_dict()["session"]
    assert payload["episode"] == "ep001"
    assert payload["workflow"] == "script_generation"
    assert payload["release"] == "generator 1.4.2"
    assert payload["tags"] == ["pilot"]
    assert payload["status"] == "completed"


def test_session_context_manager_marks_failures_and_re_raises():
    with pytest.raises(RuntimeError):
        with monitor.session("ep001") as session:
            raise RuntimeError("writer's block")
    assert session.status == "failed"
    assert monitor.get_session_history() == [session]


async def test_async_session_context_manager():
    async with monitor.session("ep001") as session:
        generate_scene()
    assert session.finished and len(session.operations) == 1


def test_sessions_nest_and_restore_the_outer_one():
    with monitor.session("outer") as outer:
        with monitor.session("inner") as inner:
            generate_scene()
        generate_scene()
    assert len(inner.operations) == 1 and len(outer.operations) == 1


def test_history_is_bounded_and_configurable():
    small = PerformanceMonitor(max_history=3)
    for index in range(5):
        with small.session(f"s{index}"):
            pass
    assert [s.session_id for s in small.get_session_history()] == ["s2", "s3", "s4"]
    small.max_history = 2
    assert [s.session_id for s in small.get_session_history()] == ["s3", "s4"]


def test_enable_and_disable():
    assert monitor.enabled
    monitor.disable()
    assert not monitor.enabled
    assert monitor.start_session("ignored") is None
    monitor.enable()
    assert monitor.enabled


def test_monitor_records_counters_api_calls_and_cache_into_the_current_session():
    with monitor.session("ep001") as session:
        monitor.increment("scenes_generated", 9)
        monitor.increment("jokes_analyzed")
        monitor.record_cache_hit("llm")
        monitor.record_cache_miss("llm")
        call = monitor.record_api_call(tokens_used=830, cost=0.01)
    assert session.scenes_generated == 9 and session.jokes_analyzed == 1
    assert session.cache_by_name == {"llm": {"hits": 1, "misses": 1}}
    assert session.api_call_records == [call]


def test_recording_without_a_session_is_harmless():
    monitor.record_cache_hit()
    monitor.increment("scenes_generated")
    assert monitor.record_api_call(tokens_used=1) is None


def test_environment_and_release_default_from_the_environment(monkeypatch):
    monkeypatch.setenv(perfmon.ENV_ENVIRONMENT, "staging")
    monkeypatch.setenv(perfmon.ENV_RELEASE, "generator 2.0")
    with monitor.session("ep001") as session:
        pass
    assert session.to_dict()["session"]["environment"] == "staging"
    assert session.to_dict()["session"]["release"] == "generator 2.0"


def test_perfmon_disabled_environment_variable_turns_everything_off():
    result = run_python(
        "import json, perfmon\n"
        "m = perfmon.get_performance_monitor()\n"
        "@perfmon.monitor_performance\n"
        "def f():\n    return 42\n"
        "with m.session('ep001') as s:\n    value = f()\n"
        "print(json.dumps([m.enabled, value, len(s.operations), m.start_session('x')]))\n",
        env={perfmon.ENV_DISABLED: "1"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, 42, 0, None]


def test_ending_a_block_session_early_records_it_once():
    with monitor.session("ep001") as session:
        assert monitor.end_session() is session
        generate_scene()  # after the end: no longer current here
    assert monitor.get_session_history() == [session]
    assert session.operations == []
