"""perfmon.summary_from_payload: the SDK's summary, rebuilt from a payload, and on the page."""

from datetime import UTC, datetime

import pytest

import perfmon
from metrics.dashboard.summary import session_summary
from tests.dashboard.world import run_payload, send, user_with
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

MS = 1_000_000


def episode_session() -> perfmon.PerformanceMetrics:
    """A finished session with cache use by name, counters and nested operations."""
    session = perfmon.PerformanceMetrics("ep001_script_gen", bottleneck_threshold=0.2)
    for name, hits, misses in (("llm", 20, 10), ("embeddings", 7, 3)):
        for _ in range(hits):
            session.record_cache_hit(name)
        for _ in range(misses):
            session.record_cache_miss(name)
    session.increment("scenes_generated", 9)
    session.increment("dialogue_lines_generated", 127)
    root = perfmon.OperationMetrics("generate_full_script")
    root._owner, root._parent = session, session
    root.start_ns, root.end_ns = session.start_ns, session.start_ns + 40_000 * MS
    session._ops.append(root)
    for offset, (name, seconds) in enumerate(
        [("scene_generation", 5.23), ("scene_generation", 4.1), ("joke_analysis", 1.2)]
    ):
        op = perfmon.OperationMetrics(name)
        op._owner, op._parent = session, root
        op.start_ns = session.start_ns + offset * 10_000 * MS
        op.end_ns = op.start_ns + round(seconds * 1e9)
        session._ops.append(op)
    session.end_ns = session.start_ns + 42_350 * MS
    session.status = "completed"
    return session


def test_a_payload_gives_back_the_summary_the_session_printed():
    session = episode_session()
    for i in range(3):
        session.record_api_call(tokens_used=100, cost=None if i == 0 else 0.01, error=i == 2)

    assert perfmon.summary_from_payload(session.to_dict()) == session.get_summary()


def test_a_running_payload_says_so():
    payload = perfmon.PerformanceMetrics("ep009").to_dict()

    summary = perfmon.summary_from_payload(payload)

    assert summary.splitlines()[2].endswith("(running)")


@pytest.mark.django_db
def test_the_session_page_shows_the_summary_with_server_prices(client, api):
    stored = send(api, run_payload("s1", episode="ep001", started_at=datetime.now(UTC)))
    client.force_login(user_with("view_session"))

    summary = session_summary(stored)
    page = client.get("/sessions/s1/").content.decode()
    text = client.get("/sessions/s1/summary.txt")

    assert summary.startswith("Performance Summary (Session: s1)")
    assert f"Est. Cost: ${stored.cost_usd:.4f}" in summary
    assert "not priced here" not in summary
    assert "scene_generation: " in summary
    assert summary.splitlines()[0] in page
    assert text["Content-Type"].startswith("text/plain")
    assert text.content.decode() == summary
