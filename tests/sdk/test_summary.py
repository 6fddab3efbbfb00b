"""get_summary(): the human-readable report, with the session's own numbers."""

from __future__ import annotations

import perfmon
from perfmon import OperationMetrics, PerformanceMetrics
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

MS = 1_000_000


def episode_session(*, nested: bool = False) -> PerformanceMetrics:
    """A finished 42.35 s session with cache use by name, counters and API calls; its
    operations sit at the top level, or under one 40 s root with ``nested``."""
    session = PerformanceMetrics("ep001_script_gen")
    for _ in range(20):
        session.record_cache_hit("llm")
    for _ in range(10):
        session.record_cache_miss("llm")
    for _ in range(7):
        session.record_cache_hit("embeddings")
    for _ in range(3):
        session.record_cache_miss("embeddings")
    for _ in range(15):
        session.record_api_call(tokens_used=830, cost=0.0083)
    session.increment("scenes_generated", 9)
    session.increment("dialogue_lines_generated", 127)
    session.increment("stage_directions_generated", 89)
    session.increment("jokes_analyzed", 23)
    parent = session
    if nested:
        parent = OperationMetrics("generate_full_script")
        parent._owner, parent._parent = session, session
        parent.start_ns, parent.end_ns = session.start_ns, session.start_ns + 40_000 * MS
        session._ops.append(parent)
    for offset, (name, seconds) in enumerate(
        [("scene_generation", 5.23), ("scene_generation", 4.1), ("joke_analysis", 1.2)]
    ):
        op = OperationMetrics(name)
        op._owner, op._parent = session, parent
        op.start_ns = session.start_ns + offset * 10_000 * MS
        op.end_ns = op.start_ns + round(seconds * 1e9)
        session._ops.append(op)
    session.end_ns = session.start_ns + 42_350 * MS
    session.status = "completed"
    return session


def test_summary_has_the_original_shape_with_the_sessions_numbers():
    lines = episode_session().get_summary().splitlines()

    assert lines[:20] == [
        "Performance Summary (Session: ep001_script_gen)",
        "=" * 60,
        "Total Duration: 42.35s",
        "Cache Performance:",
        "  Hit Rate: 67.5% (27 hits, 13 misses)",
        "    embeddings: 70.0% (7 hits, 3 misses)",
        "    llm: 66.7% (20 hits, 10 misses)",
        "API Usage:",
        "  Calls: 15 (Errors: 0)",
        "  Tokens: 12,450",
        "  Est. Cost: $0.1245",
        "Generation Stats:",
        "  Scenes: 9",
        "  Dialogue Lines: 127",
        "  Stage Directions: 89",
        "  Jokes Analyzed: 23",
        "Slowest Operations:",
        "  scene_generation: 5.23s",
        "  scene_generation: 4.10s",
        "  joke_analysis: 1.20s",
    ]
    assert lines[20:] == [
        "Bottleneck Warnings (self time above 20% of the session):",
        "  scene_generation: 9.33s self time (22.0% of session) in 2 calls",
    ]


def test_summary_of_an_empty_running_session():
    summary = PerformanceMetrics("ep002").get_summary()
    assert "(running)" in summary.splitlines()[2]
    assert "Slowest Operations:\n  none" in summary
    assert summary.endswith("of the session):\n  none")


def test_extra_counters_and_unpriced_calls_are_shown():
    session = PerformanceMetrics("ep003")
    session.increment("beats_written", 4)
    session.record_api_call(model="house-model", prompt_tokens=1, completion_tokens=1)
    summary = session.get_summary()
    assert "  Beats written: 4" in summary
    assert "Est. Cost: $0.0000 (1 call not priced here)" in summary


def test_a_payload_gives_back_the_summary_the_session_printed():
    session = episode_session(nested=True)
    for i in range(3):
        session.record_api_call(tokens_used=100, cost=None if i == 0 else 0.01, error=i == 2)

    assert perfmon.summary_from_payload(session.to_dict()) == session.get_summary()


def test_a_running_payload_says_so():
    payload = PerformanceMetrics("ep009").to_dict()

    summary = perfmon.summary_from_payload(payload)

    assert summary.splitlines()[2].endswith("(running)")
