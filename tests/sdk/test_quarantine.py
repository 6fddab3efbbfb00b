"""The spool against a local HTTP server that refuses or breaks on one payload: the poison is
set aside with its reason and counted, the payloads behind it arrive, a backlog goes out at
network speed, and an unusable spool directory never raises into the generator."""

from __future__ import annotations

import json
import logging
import socket
import time

import perfmon
from perfmon import get_performance_monitor
from tests.sdk.helpers import IngestStub, free_port, isolated_perfmon  # noqa: F401

monitor = get_performance_monitor()


def configure(url: str, spool, **overrides) -> None:
    settings = {"api_key": "k", "spool_dir": spool, "max_retries": 0,
                "spool_resend_interval": 3600.0, "timeout": 3.0}
    settings.update(overrides)
    assert perfmon.configure(url=url, **settings)


def record(session_id: str) -> None:
    with monitor.session(session_id, episode="ep001"):
        with monitor.operation("scene"):
            pass


def spool_during_an_outage(tmp_path, session_ids: list[str]) -> int:
    """Spool the sessions while the server's port refuses connections; the port returned
    is free again for the test's server."""
    # Bound but not listening: every connection is refused at once, and while we hold the
    # port nothing else can take it (another test's server, or an outgoing connection
    # whose source port would make ours connect to itself and wait for a timeout).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        configure(f"http://127.0.0.1:{port}", tmp_path)
        for session_id in session_ids:
            record(session_id)
        # Generous: in a long full run this once took more than 10 s (cause not found);
        # filling the spool is not what these tests measure.
        assert perfmon.flush(60), perfmon.stats()
    assert perfmon.stats()["spool_files"] == len(session_ids)
    return port


def quarantined(tmp_path) -> list[dict]:
    (spool,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return [json.loads(p.read_text()) for p in sorted((spool / "quarantine").glob("*.json"))]


def test_a_payload_the_server_refuses_is_quarantined_and_the_rest_arrive(tmp_path):
    ids = ["ep001_poison", *[f"ep001_take{n}" for n in range(1, 6)]]
    port = spool_during_an_outage(tmp_path, ids)

    with IngestStub(port=port) as stub:
        stub.rule = lambda p: 422 if p and p["session"]["id"] == "ep001_poison" else None
        assert perfmon.flush(10)
        assert set(stub.accepted) == set(ids[1:])

    stats = perfmon.stats()
    assert (stats["resent"], stats["rejected"], stats["quarantined"]) == (5, 1, 1)
    assert (stats["spool_files"], stats["quarantine_files"], stats["dropped"]) == (0, 1, 0)
    (reason,) = quarantined(tmp_path)
    assert reason["status"] == 422 and reason["endpoint"].endswith("/api/v1/sessions")


def test_a_payload_that_keeps_breaking_the_server_stops_blocking_the_others(tmp_path):
    ids = ["ep001_poison", *[f"ep001_take{n}" for n in range(1, 6)]]
    port = spool_during_an_outage(tmp_path, ids)

    with IngestStub(port=port) as stub:
        stub.rule = lambda p: 500 if p and p["session"]["id"] == "ep001_poison" else None
        assert perfmon.flush(10)  # the five behind the poison arrive at the first pass
        assert set(stub.accepted) == set(ids[1:])
        assert perfmon.stats()["quarantined"] == 0  # one 500 may be a passing fault
        for _ in range(5):  # bounded: a few more passes give the poison its last answers
            if perfmon.stats()["quarantined"]:
                break
            assert perfmon.flush(10)
        poison_tries = sum(1 for r in stub.requests
                           if r.payload and r.payload["session"]["id"] == "ep001_poison")

    stats = perfmon.stats()
    assert (stats["quarantined"], stats["spool_files"], stats["resent"]) == (1, 0, 5)
    assert poison_tries == 3
    (reason,) = quarantined(tmp_path)
    assert reason["status"] == 500


def test_an_outage_answering_500_to_everything_quarantines_nothing(tmp_path):
    port = spool_during_an_outage(tmp_path, ["ep001_a", "ep001_b", "ep001_c"])
    with IngestStub(port=port) as stub:
        stub.rule = lambda p: 500
        for _ in range(5):
            assert perfmon.flush(10)
        assert not stub.accepted
    stats = perfmon.stats()
    assert (stats["quarantined"], stats["spool_files"]) == (0, 3)


def test_a_session_refused_on_its_first_send_is_quarantined_not_lost(tmp_path):
    with IngestStub() as stub:
        configure(stub.url, tmp_path)
        stub.answer(422)
        record("ep001_refused")
        assert perfmon.flush(10)
    stats = perfmon.stats()
    assert (stats["rejected"], stats["quarantined"], stats["spooled"]) == (1, 1, 0)
    assert [r["status"] for r in quarantined(tmp_path)] == [422]


def test_a_large_backlog_is_resent_at_network_speed(tmp_path):
    ids = [f"ep001_part{n:03d}" for n in range(160)]  # more than three spool batches
    port = spool_during_an_outage(tmp_path, ids)

    with IngestStub(port=port) as stub:
        started = time.monotonic()
        assert perfmon.flush(60)
        elapsed = time.monotonic() - started
        assert len(stub.accepted) == 160
    assert perfmon.stats()["spool_files"] == 0
    assert elapsed < 60  # one flush, not one batch per resend interval (an hour here)


def test_a_spool_directory_whose_parent_is_a_file_never_raises(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool's parent should be")
    port = free_port()
    with caplog.at_level(logging.WARNING, logger="perfmon"):
        configure(f"http://127.0.0.1:{port}", blocker / "spool")
        record("ep001_a")
        record("ep001_b")
        assert perfmon.flush(10)
        stats = perfmon.stats()  # must not raise either
        summary_line = perfmon.PerformanceMetrics("x").get_summary().splitlines()[-1]

    assert (stats["spooled"], stats["dropped"], stats["spool_files"]) == (0, 2, 0)
    assert stats["spool_errors"] >= 2
    problems = [r for r in caplog.records if "spool problem" in r.getMessage()]
    assert len(problems) == 1 and "NotADirectoryError" in problems[0].getMessage()
    assert summary_line.startswith("Export (this process):") and "2 dropped" in summary_line


def test_the_session_report_counts_quarantined_and_dropped(tmp_path):
    with IngestStub() as stub:
        configure(stub.url, tmp_path)
        stub.answer(422)
        record("ep001_first")
        assert perfmon.flush(10)
        record("ep001_second")
        assert perfmon.flush(10)
        report = stub.sessions["ep001_second"]["session"]["sdk"]
    assert (report["rejected"], report["quarantined"], report["dropped"]) == (1, 1, 0)
