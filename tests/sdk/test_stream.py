"""The exporter's streamed bodies (perfmon._stream) say what ``to_dict()`` says: the same
payload when it fits one request, the same payload cut into parts when it does not."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

import perfmon
from ingest import schemas
from perfmon import _http, _stream, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()
REPORT = {"version": "test", "sent": 0, "retried": 0, "spooled": 0, "resent": 0,
          "dropped": 0, "rejected": 0, "quarantined": 0, "spool_errors": 0,
          "operations": 0, "recording_overhead_s": 0.0, "fitted": 0}


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@perfmon.monitor_performance("render")
def render() -> None:
    return None


@perfmon.monitor_performance("compose")
def compose() -> None:
    render()  # a record whose parent is another record
    with monitor.operation("inside", n=1):  # keeps compose an object: a child refers to it
        render()


def record_varied(session_id: str, *, running: bool = False) -> perfmon.PerformanceMetrics:
    """A session with every kind of operation and value the encoder meets."""
    session = monitor.start_session(session_id, episode="ep001", workflow="w" * 300,
                                    tags=["pilot", ""], metadata={"huge": 10**5000,
                                                                  "odd": Unprintable()})
    with monitor.operation("scene", index=0, ratio=0.5, nan=float("nan"),
                           deep={"a": [1, (2, 3), {"b": {"c": {"d": {"e": {"f": {}}}}}}]}):
        render()
        compose()
        monitor.record_cache_hit("llm")
        monitor.record_cache_miss("llm")
        with monitor.operation("line\udc80", text="é" * 40, big=-(2**70)):
            monitor.record_api_call(model="gpt-4o-mini", prompt_tokens=10,
                                    completion_tokens=5, latency_s=0.2, prompt="hi")
        with monitor.operation("bloated", blob="x" * 20_000, small=1):
            pass
        with pytest.raises(ValueError):
            with monitor.operation("failing"):
                raise ValueError("boom \udc80")
        for _ in range(20):
            render()
    monitor.record_api_call(tokens_used=7, error="rate limited", model="gpt-4o")
    outside = perfmon.OperationMetrics("timed elsewhere", duration_seconds=0.5,
                                       metadata={"k": "v"})
    session.add_operation(outside)  # no index of its own: found by the map
    if running:
        scope = monitor.operation("still running", step=3)
        scope.__enter__()
        render()
        return session
    session.finish()
    return session


def decoded(body: bytes) -> dict[str, Any]:
    return json.loads(gzip.decompress(body))


def old_json(session: perfmon.PerformanceMetrics) -> tuple[dict[str, Any], int]:
    """What the exporter sent before streaming: to_dict() through perfmon._http.dumps."""
    payload = session.to_dict()
    payload["session"]["sdk"] = dict(REPORT)
    return json.loads(_http.dumps(payload)), session.fitted_in_payload


def comparable(payload: dict[str, Any]) -> dict[str, Any]:
    session = dict(payload["session"])
    del session["sequence"]  # every snapshot takes the next one
    session.pop("peak_memory_bytes", None)  # read again for a running session
    return {**payload, "session": session}


@pytest.mark.parametrize("running", [False, True])
def test_a_payload_that_fits_one_request_is_to_dict_as_json(running):
    session = record_varied(f"ep001_stream_{running}", running=running)
    before, fitted = old_json(session)
    bodies = _stream.encode(session, 8 * 1024 * 1024, lambda s: dict(REPORT))

    (body,) = bodies
    after = decoded(body)
    assert comparable(after) == comparable(before)
    assert session.fitted_in_payload == fitted > 0
    assert "part" not in after["session"]
    schemas.SessionPayload.model_validate(after)  # the server takes it
    if running:
        assert any(op["ended_at"] is None for op in after["operations"])


def test_the_report_sees_the_values_fitted_in_the_whole_payload():
    session = record_varied("ep001_fitted")
    _, fitted = old_json(session)
    seen: list[int] = []
    bodies = _stream.encode(session, 2_000, lambda s: seen.append(s.fitted_in_payload) or {
        **REPORT, "fitted": s.fitted_in_payload})
    assert seen == [fitted]
    assert {decoded(b)["session"]["sdk"]["fitted"] for b in bodies} == {fitted}


def test_a_session_without_a_report_is_sent_without_one():
    session = record_varied("ep001_noreport")
    (body,) = _stream.encode(session, 8 * 1024 * 1024, lambda s: None)
    assert "sdk" not in decoded(body)["session"]


@pytest.mark.parametrize("limit,max_ops,max_calls", [
    (30_000, 100_000, 50_000),  # split by size
    (8 * 1024 * 1024, 70, 9),  # split by the server's per-request counts
    (1, 100_000, 50_000),  # every item alone, however large
])
def test_a_split_payload_is_the_whole_payload_in_parts(monkeypatch, limit, max_ops, max_calls):
    monkeypatch.setattr(_stream, "MAX_OPERATIONS", max_ops)
    monkeypatch.setattr(_stream, "MAX_API_CALLS", max_calls)
    with monitor.session("ep-split", episode="ep001") as session:
        for scene in range(12):
            with monitor.operation("scene", index=scene):
                for line in range(15):
                    with monitor.operation("line", text="y" * 60, n=line):
                        if line % 5 == 0:
                            monitor.record_api_call(model="gpt-4o-mini", prompt_tokens=3,
                                                    completion_tokens=2)
                    render()
    whole, _ = old_json(session)
    bodies = _stream.encode(session, limit, lambda s: dict(REPORT))

    parts = [decoded(body) for body in bodies]
    count = len(parts)
    assert count > 1
    assert [p["session"]["part"] for p in parts] == [
        {"index": n, "count": count} for n in range(1, count + 1)]
    headers = [{k: v for k, v in p["session"].items() if k != "part"} for p in parts]
    assert all(h == headers[0] for h in headers)
    assert comparable({**whole, "session": headers[0]})["session"] == (
        comparable(whole)["session"])
    assert [op for p in parts for op in p["operations"]] == whole["operations"]
    assert [call for p in parts for call in p["api_calls"]] == whole["api_calls"]
    seen: set[str] = set()
    for body, part in zip(bodies, parts, strict=True):
        items = len(part["operations"]) + len(part["api_calls"])
        assert len(gzip.decompress(body)) <= limit or items == 1
        assert len(part["operations"]) <= max_ops and len(part["api_calls"]) <= max_calls
        for op in part["operations"]:
            assert op["parent_id"] is None or op["parent_id"] in seen  # parents first
            seen.add(op["id"])
        schemas.SessionPayload.model_validate(part)
