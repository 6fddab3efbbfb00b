"""to_dict() is the schema-v1 payload: exactly the documented keys, and values the server
accepts."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from perfmon import PerformanceMetrics, get_performance_monitor, monitor_performance
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()

SESSION_KEYS = {
    "id", "episode", "workflow", "release", "environment", "host", "status", "started_at",
    "ended_at", "cache", "counters", "tags", "metadata", "sequence", "peak_memory_bytes",
}
OPERATION_KEYS = {
    "id", "parent_id", "name", "started_at", "ended_at", "duration_s", "success", "error",
    "metadata", "cache_hits", "cache_misses",
}
API_CALL_KEYS = {
    "id", "operation_id", "provider", "model", "at", "latency_s", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_write_tokens", "total_tokens", "cost_usd",
    "prompt_hash", "error", "error_message",
}


@monitor_performance("dialogue")
def write_line() -> None:
    monitor.record_cache_hit("llm")
    monitor.record_api_call(model="gpt-4o-mini", provider="openai", prompt_tokens=70,
                            completion_tokens=13, latency_s=0.4, prompt="line")


def full_session() -> PerformanceMetrics:
    with monitor.session("ep001_script_gen", episode="ep001", workflow="script_generation",
                         release="generator 1.4.2", environment="test", tags=["pilot"],
                         metadata={"model_family": "gpt"}) as session:
        with monitor.operation("scene_generation", scene=3):
            write_line()
            write_line()
        monitor.increment("scenes_generated")
    return session


def parse(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset().total_seconds() == 0 and stamp.endswith("+00:00")
    return parsed


def test_payload_has_exactly_the_documented_keys():
    payload = full_session().to_dict()

    assert set(payload) == {"schema_version", "session", "operations", "api_calls"}
    assert payload["schema_version"] == 1
    assert set(payload["session"]) == SESSION_KEYS
    assert all(set(op) == OPERATION_KEYS for op in payload["operations"])
    assert all(set(call) <= API_CALL_KEYS for call in payload["api_calls"])
    assert set(payload["session"]["cache"]) == {"hits", "misses", "by_name"}


def test_payload_values_and_links():
    session = full_session()
    payload = json.loads(json.dumps(session.to_dict()))  # plain JSON all the way down

    s = payload["session"]
    assert (s["id"], s["episode"], s["status"], s["tags"]) == (
        "ep001_script_gen", "ep001", "completed", ["pilot"]
    )
    assert s["cache"] == {"hits": 2, "misses": 0, "by_name": {"llm": {"hits": 2, "misses": 0}}}
    assert s["counters"]["scenes_generated"] == 1
    assert parse(s["started_at"]) <= parse(s["ended_at"])

    ops = payload["operations"]
    ids = [op["id"] for op in ops]
    assert len(set(ids)) == len(ids) == 3
    scene, first, second = ops
    assert scene["parent_id"] is None and scene["metadata"] == {"scene": 3}
    assert first["parent_id"] == second["parent_id"] == scene["id"]
    assert first["cache_hits"] == 1
    for op in ops:
        start, end = parse(op["started_at"]), parse(op["ended_at"])
        assert (end - start).total_seconds() == pytest.approx(op["duration_s"], abs=2e-6)

    calls = payload["api_calls"]
    assert [c["operation_id"] for c in calls] == [first["id"], second["id"]]
    assert len({c["id"] for c in calls}) == 2
    assert calls[0]["total_tokens"] == 83 and calls[0]["cost_usd"] is None  # server prices it
    parse(calls[0]["at"])


def test_running_session_and_operation_have_null_ends():
    with monitor.session("ep001") as session:
        with monitor.operation("scene"):
            payload = session.to_dict()
    assert payload["session"]["status"] == "running"
    assert payload["session"]["ended_at"] is None
    (op,) = payload["operations"]
    assert op["ended_at"] is None and op["duration_s"] is None and op["success"] is None


def test_values_are_kept_within_the_servers_bounds():
    session = PerformanceMetrics("ep001", tags=["", "x" * 300],
                                 metadata={f"k{i}": i for i in range(150)})
    session.increment("scenes_generated", 2.7)
    session.increment("retakes", -3)
    with monitor.session("ep002") as other:
        with monitor.operation("n" * 300, **{"m" * 300: 1}):
            pass
    payload = session.to_dict()["session"]
    assert payload["tags"] == ["x" * 200]
    assert len(payload["metadata"]) == 100
    assert payload["counters"]["scenes_generated"] == 2
    assert payload["counters"]["retakes"] == 0
    (op,) = other.to_dict()["operations"]
    assert len(op["name"]) == 200 and list(op["metadata"]) == ["m" * 200]


def test_a_session_id_the_server_would_refuse_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="perfmon"):
        PerformanceMetrics("episode one / draft")
    assert "not a slug" in caplog.text


def test_payload_validates_against_the_servers_schema():
    schemas = pytest.importorskip("ingest.schemas")
    session = full_session()
    with monitor.session("ep002") as running:
        with monitor.operation("still_going"):
            running_payload = running.to_dict()
    for payload in (session.to_dict(), running_payload,
                    PerformanceMetrics("bare").to_dict()):
        schemas.SessionPayload.model_validate_json(json.dumps(payload))


def test_every_snapshot_has_a_newer_sequence_than_the_last():
    session = PerformanceMetrics("ep001_take1")

    sequences = [session.to_dict()["session"]["sequence"] for _ in range(3)]

    assert sequences == sorted(set(sequences))
    assert all(isinstance(s, int) and 0 <= s < 2**63 for s in sequences)
