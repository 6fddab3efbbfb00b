"""The exporter against a local HTTP server that fails, throttles, hangs and comes back."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

import perfmon
from perfmon import _config, _exporter, _http, get_performance_monitor
from tests.sdk.helpers import (  # noqa: F401  (isolated_perfmon is an autouse fixture)
    Answer,
    IngestStub,
    free_port,
    isolated_perfmon,
    run_python,
)

monitor = get_performance_monitor()
API_KEY = "pm_test_key"


@pytest.fixture
def stub():
    with IngestStub() as server:
        yield server


def configure(url: str, spool: Path | bool, **overrides: object) -> None:
    settings: dict = {
        "api_key": API_KEY, "spool_dir": spool, "backoff_base": 0.01, "backoff_max": 0.02,
        "max_retries": 3, "timeout": 3.0, "spool_resend_interval": 3600.0,
        "exit_timeout": 1.0,
    }
    settings.update(overrides)
    assert perfmon.configure(url=url, **settings)


def exporter() -> _exporter.Exporter:
    found = _config.get_exporter()
    assert found is not None
    return found


def record_session(session_id: str, operations: int = 3) -> perfmon.PerformanceMetrics:
    with monitor.session(session_id, episode="ep001") as session:
        for index in range(operations):
            with monitor.operation("scene", index=index):
                monitor.record_api_call(tokens_used=10, model="gpt-4o-mini")
    return session


def wire_ids(session: perfmon.PerformanceMetrics) -> set[str]:
    return {op["id"] for op in session.to_dict()["operations"]}


def test_a_finished_session_is_posted_gzipped_with_the_api_key(stub, tmp_path):
    configure(stub.url, tmp_path)
    session = record_session("ep001_take1")
    assert perfmon.flush(5)

    (request,) = stub.requests
    assert request.path == "/api/v1/sessions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    health = request.payload["session"].pop("sdk")  # added by the exporter (test_sdk_health)
    again = session.to_dict()
    # every snapshot carries a newer sequence, so a late older one changes nothing
    assert again["session"].pop("sequence") > request.payload["session"].pop("sequence")
    again["session"].pop("sdk", None)
    assert request.payload == again
    assert health["version"] == perfmon.__version__ and health["operations"] == 3
    assert perfmon.stats()["sent"] == 1


def test_server_errors_are_retried_with_backoff_until_they_pass(stub, tmp_path):
    configure(stub.url, tmp_path)
    stub.answer(503, 500)
    record_session("ep001")
    assert perfmon.flush(5)

    assert [r.status for r in stub.requests] == [503, 500, 201]
    assert stub.accepted["ep001"] == 1
    stats = perfmon.stats()
    assert (stats["sent"], stats["retried"], stats["spooled"]) == (1, 2, 0)


def test_throttling_honours_retry_after(stub, tmp_path):
    configure(stub.url, tmp_path, backoff_max=0.01)
    stub.answer(Answer(429, {"Retry-After": "0.3"}))
    record_session("ep001")
    assert perfmon.flush(5)

    first, second = stub.requests
    assert first.status == 429 and second.status == 201
    assert second.at - first.at >= 0.29  # the backoff alone would wait about 0.01 s


def test_other_client_errors_are_not_retried_and_logged_once(stub, tmp_path, caplog):
    configure(stub.url, tmp_path)
    stub.answer(422, 422)
    with caplog.at_level(logging.DEBUG, logger="perfmon"):
        record_session("ep001")
        record_session("ep002")
        assert perfmon.flush(5)

    assert [r.status for r in stub.requests] == [422, 422]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "HTTP 422" in warnings[0].getMessage()
    stats = perfmon.stats()
    assert (stats["rejected"], stats["retried"], stats["spooled"]) == (2, 0, 0)


def test_unreachable_server_spools_and_the_spool_is_resent_when_it_is_back(tmp_path):
    port = free_port()
    configure(f"http://127.0.0.1:{port}", tmp_path, max_retries=2)
    session = record_session("ep001")
    assert perfmon.flush(5)
    stats = perfmon.stats()
    assert (stats["sent"], stats["retried"], stats["spooled"], stats["spool_files"]) == (
        0, 2, 1, 1
    )

    with IngestStub(port=port) as stub:
        assert perfmon.flush(5)
        assert stub.accepted["ep001"] == 1
        assert stub.operation_ids("ep001") == wire_ids(session)
    stats = perfmon.stats()
    assert (stats["sent"], stats["resent"], stats["spool_files"]) == (1, 1, 0)


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_hung_server_gets_the_session_spooled_after_one_timeout(stub, tmp_path):
    # The server accepts the connection and never answers. Retrying would keep the session
    # in memory only (4 retries x 1 s here, x 10 s by default): a kill -9 would lose it.
    configure(stub.url, tmp_path, timeout=1.0, max_retries=4)
    stub.answer(Answer(hang=True))  # then 201s, once released
    started = time.monotonic()
    session = record_session("ep-hung")

    assert wait_until(lambda: perfmon.stats()["spool_files"] == 1, timeout_s=10)
    assert time.monotonic() - started < 3  # one timeout, not five
    assert perfmon.stats()["retried"] == 0
    assert len(list(tmp_path.rglob("*.fin.*"))) == 1  # on disk: survives the process

    stub.release()
    assert perfmon.flush(5)
    assert stub.operation_ids("ep-hung") == wire_ids(session)
    assert perfmon.stats()["spool_files"] == 0


def test_an_outage_loses_nothing_and_stores_nothing_twice(stub, tmp_path):
    configure(stub.url, tmp_path)
    sessions = {}

    stub.answer(*[503] * 5)  # down: 1 try + 3 retries, then the flush's spool pass
    sessions["a"] = record_session("ep-a")
    assert perfmon.flush(5)
    assert exporter().stats()["spool_files"] == 1

    stub.answer(Answer(429, {"Retry-After": "0.05"}))  # throttled, then back
    sessions["b"] = record_session("ep-b")
    # no flush: the first success is the signal to resend what was spooled
    assert stub.wait_for(lambda s: s.accepted["ep-a"] == 1)
    assert perfmon.flush(5)
    assert exporter().stats()["spool_files"] == 0

    stub.answer(*[Answer(None, drop=True)] * 5)  # connections dropped mid-request
    sessions["c"] = record_session("ep-c", operations=5)
    assert perfmon.flush(5)
    sessions["d"] = record_session("ep-d")
    assert perfmon.flush(5)

    for session in sessions.values():
        assert stub.accepted[session.session_id] == 1, session.session_id
        assert stub.operation_ids(session.session_id) == wire_ids(session)
        assert stub.sessions[session.session_id]["session"]["status"] == "completed"
        assert len(stub.sessions[session.session_id]["api_calls"]) == len(session.operations)
    stats = perfmon.stats()
    assert (stats["sent"], stats["resent"], stats["spooled"], stats["dropped"]) == (4, 2, 2, 0)
    assert stats["spool_files"] == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(stub, tmp_path):
    configure(stub.url, tmp_path, queue_size=2)
    stub.answer(Answer(hang=True))
    record_session("ep-1")
    assert stub.wait_for(lambda s: s.arrived == 1)  # the worker is stuck on ep-1

    started = time.monotonic()
    kept = [record_session(f"ep-{n}") for n in (2, 3)]
    dropped = [record_session(f"ep-{n}") for n in (4, 5)]
    assert exporter().submit(record_session("ep-6")) is False
    assert time.monotonic() - started < 1.0  # nobody waited for the stuck request
    assert perfmon.stats()["dropped"] == 4  # ep-4, ep-5 when they ended, ep-6 twice

    stub.release()
    assert perfmon.flush(5)
    assert set(stub.accepted) == {"ep-1", *(s.session_id for s in kept)}
    assert not any(s.session_id in stub.sessions for s in dropped)


@pytest.mark.parametrize(("env", "configured", "expected"), [
    (None, None, 10.0),   # on by default, every 10 s
    ("2.5", None, 2.5),   # PERFMON_SNAPSHOT_INTERVAL
    ("0", None, None),    # 0 switches running snapshots off
    ("2.5", 0, None),     # an explicit argument wins over the environment
    ("soon", None, 10.0),  # not a number: the default, with a warning
])
def test_running_sessions_are_sent_every_10_s_by_default(stub, tmp_path, monkeypatch, env,
                                                        configured, expected):
    if env is None:
        monkeypatch.delenv("PERFMON_SNAPSHOT_INTERVAL", raising=False)
    else:
        monkeypatch.setenv("PERFMON_SNAPSHOT_INTERVAL", env)
    settings = {} if configured is None else {"snapshot_interval": configured}
    configure(stub.url, tmp_path, **settings)

    assert exporter()._snapshot_interval == expected


def test_running_sessions_are_sent_every_interval_when_asked(stub, tmp_path):
    configure(stub.url, tmp_path, snapshot_interval=0.05)

    def running_snapshot_seen(server: IngestStub) -> bool:
        stored = server.sessions.get("ep-live")
        return bool(stored) and stored["session"]["status"] == "running" and any(
            op["ended_at"] is None for op in stored["operations"].values()
        )

    with monitor.session("ep-live") as session:
        with monitor.operation("long_scene"):
            assert stub.wait_for(running_snapshot_seen)
    assert perfmon.flush(5)

    stored = stub.sessions["ep-live"]
    assert stored["session"]["status"] == "completed"
    (op,) = stored["operations"].values()
    assert op["ended_at"] is not None
    assert stub.operation_ids("ep-live") == wire_ids(session)


def test_sessions_are_flushed_at_exit(stub, tmp_path):
    result = run_python(
        "import perfmon\n"
        f"perfmon.configure(url={stub.url!r}, api_key='k', spool_dir={str(tmp_path)!r})\n"
        "m = perfmon.get_performance_monitor()\n"
        "with m.session('ep-exit'):\n"
        "    with m.operation('scene'):\n"
        "        pass\n"
    )
    assert result.returncode == 0, result.stderr
    assert stub.accepted["ep-exit"] == 1


def test_exit_is_bounded_when_the_server_hangs_and_the_payload_is_spooled(stub, tmp_path):
    stub.answer(Answer(hang=True))
    started = time.monotonic()
    result = run_python(
        "import perfmon\n"
        f"perfmon.configure(url={stub.url!r}, api_key='k', spool_dir={str(tmp_path)!r},\n"
        "                  timeout=30, exit_timeout=0.5)\n"
        "m = perfmon.get_performance_monitor()\n"
        "with m.session('ep-hang'):\n"
        "    pass\n"
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 5  # interpreter start + 0.5 s flush + spooling, not the 30 s timeout
    assert "ep-hang" not in stub.sessions
    stub.release()

    # The next run with the same server and key picks it up from the spool.
    assert perfmon.configure(url=stub.url, api_key="k", spool_dir=tmp_path)
    assert perfmon.flush(5)
    assert stub.accepted["ep-hang"] == 1


def test_the_exporter_never_raises_into_the_generator(tmp_path, caplog):
    configure(f"http://127.0.0.1:{free_port()}", False, max_retries=1)

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("cannot print me")

    with monitor.session("ep-bad", metadata={"thing": Unprintable()}):
        pass
    record_session("ep-unsent")
    assert perfmon.flush(5)
    stats = perfmon.stats()
    # Both dropped (server down, no spool): ep-bad's unprintable value became a stand-in
    # instead of costing it (issue 16; tests/test_sdk_encoding.py), and nothing raised.
    assert stats["dropped"] == 2
    assert "exporter error" not in caplog.text


def test_large_sessions_are_split_with_parents_first(stub, tmp_path):
    configure(stub.url, tmp_path, max_payload_bytes=20_000)
    with monitor.session("ep-big") as session:
        for scene in range(40):
            with monitor.operation("scene", index=scene):
                for line in range(9):
                    with monitor.operation("line", text="x" * 40, n=line):
                        pass
    assert perfmon.flush(5)

    assert len(stub.requests) > 1
    assert all(r.raw_size <= 20_000 for r in stub.requests)
    seen: set[str] = set()
    for request in stub.requests:
        ops = request.payload["operations"]
        seen.update(op["id"] for op in ops)
        assert all(op["parent_id"] is None or op["parent_id"] in seen for op in ops)
    assert stub.operation_ids("ep-big") == wire_ids(session)
    assert len(wire_ids(session)) == 400
    # Each request says which part of how many it is, all of one snapshot (one sequence),
    # so the server finishes the session only when every part has arrived.
    count = len(stub.requests)
    assert [r.payload["session"]["part"] for r in stub.requests] == [
        {"index": n, "count": count} for n in range(1, count + 1)]
    assert len({r.payload["session"]["sequence"] for r in stub.requests}) == 1


def test_a_session_that_fits_one_request_is_not_marked_as_a_part(stub, tmp_path):
    configure(stub.url, tmp_path)
    record_session("ep-small")
    assert perfmon.flush(5)

    (request,) = stub.requests
    assert "part" not in request.payload["session"]


def test_configuration_from_the_environment(stub, tmp_path, monkeypatch):
    monkeypatch.setenv(perfmon.ENV_URL, stub.url)
    monkeypatch.setenv(perfmon.ENV_API_KEY, "env-key")
    monkeypatch.setenv(perfmon.ENV_SPOOL_DIR, str(tmp_path))
    record_session("ep-env")  # no configure(): the first ended session sets it up
    assert perfmon.flush(5)
    (request,) = stub.requests
    assert request.headers["authorization"] == "Bearer env-key"


def test_summary_reports_what_the_exporter_did(stub, tmp_path):
    configure(stub.url, tmp_path)
    stub.answer(503)
    session = record_session("ep001")
    assert perfmon.flush(5)
    assert session.get_summary().splitlines()[-1] == (
        "Export (this process): 1 sent, 1 retried, 0 spooled, 0 resent, 0 dropped, 0 rejected"
    )


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(tmp_path):
    configure("http://127.0.0.1:9", False, backoff_base=0.5, backoff_max=4.0)
    delays = [[exporter()._backoff(attempt) for _ in range(50)] for attempt in range(6)]
    for attempt, samples in enumerate(delays):
        step = min(4.0, 0.5 * 2**attempt)
        assert all(step / 2 <= d <= step for d in samples)
        assert len(set(samples)) > 1  # jittered


def test_retry_after_accepts_seconds_and_http_dates():
    assert _http.parse_retry_after("7") == 7.0
    assert _http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # past
    assert _http.parse_retry_after("soon") is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_worker(stub, tmp_path):
    configure(stub.url, tmp_path)
    record_session("ep-parent")
    assert perfmon.flush(5)

    pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread did not survive the fork
        try:
            record_session("ep-child")
            os._exit(0 if perfmon.flush(5) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stub.accepted["ep-child"] == 1 and stub.accepted["ep-parent"] == 1
