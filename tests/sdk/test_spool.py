"""The spool: what the server could not take yet, bounded, shared safely, superseded."""

from __future__ import annotations

import os
import time

import perfmon
from perfmon import _config, get_performance_monitor
from perfmon._spool import STALE_CLAIM_S, Spool
from tests.sdk.helpers import IngestStub, free_port, isolated_perfmon  # noqa: F401

monitor = get_performance_monitor()


def dead_exporter(tmp_path, **overrides):
    settings = {"api_key": "k", "spool_dir": tmp_path, "max_retries": 0,
                "spool_resend_interval": 3600.0}
    settings.update(overrides)
    assert perfmon.configure(url=f"http://127.0.0.1:{free_port()}", **settings)
    exporter = _config.get_exporter()
    # The worker passes over the spool once as it starts; wait for that pass, or it could be
    # holding (claiming) a file the test has just written while the test lists the spool.
    assert exporter.flush(5)
    return exporter


def test_newer_payloads_of_a_session_supersede_its_spooled_running_snapshots(tmp_path):
    exporter = dead_exporter(tmp_path)
    exporter._spool_bodies([b"run-1"], "ep001", "run")
    exporter._spool_bodies([b"run-2"], "ep001", "run")
    exporter._spool_bodies([b"other"], "ep002", "run")
    assert sorted(p.read_bytes() for p in exporter._spool.pending()) == [b"other", b"run-2"]

    exporter._spool_bodies([b"final-1", b"final-2"], "ep001", "fin")
    assert sorted(p.read_bytes() for p in exporter._spool.pending()) == [
        b"final-1", b"final-2", b"other"
    ]


def test_the_spool_is_bounded_and_what_does_not_fit_is_counted(tmp_path):
    dead_exporter(tmp_path, max_spool_bytes=64)
    with monitor.session("ep001"):
        with monitor.operation("scene"):
            pass
    assert perfmon.flush(5)
    stats = perfmon.stats()
    assert (stats["spooled"], stats["dropped"], stats["spool_files"]) == (0, 1, 0)


def test_a_claimed_file_is_not_sent_by_another_sender(tmp_path):
    mine, theirs = Spool(tmp_path, 10**6), Spool(tmp_path, 10**6)
    assert mine.write(b"payload", "ep001", "fin")
    (path,) = theirs.pending()
    claimed = mine.claim(path)
    assert claimed is not None
    assert theirs.pending() == []
    assert theirs.claim(path) is None
    mine.release(claimed)
    assert theirs.pending() == [path]


def test_a_claim_left_by_a_dead_sender_is_taken_back(tmp_path):
    spool = Spool(tmp_path, 10**6)
    spool.write(b"payload", "ep001", "fin")
    (path,) = spool.pending()
    claimed = spool.claim(path)
    old = time.time() - STALE_CLAIM_S - 5
    os.utime(claimed, (old, old))
    assert [p.read_bytes() for p in spool.pending()] == [b"payload"]


def test_spooled_payloads_only_go_to_the_server_and_key_they_were_meant_for(tmp_path):
    dead_exporter(tmp_path)
    with monitor.session("ep001"):
        pass
    assert perfmon.flush(5)
    assert perfmon.stats()["spool_files"] == 1

    with IngestStub() as other_server:
        assert perfmon.configure(url=other_server.url, api_key="k", spool_dir=tmp_path)
        assert perfmon.flush(5)
        assert other_server.requests == []
        assert perfmon.stats()["spool_files"] == 0  # a different spool subdirectory


def test_a_spooled_payload_the_server_refuses_is_removed(tmp_path):
    with IngestStub() as stub:
        assert perfmon.configure(url=stub.url, api_key="k", spool_dir=tmp_path, max_retries=0,
                                 spool_resend_interval=3600.0)
        stub.answer(503, 400)
        with monitor.session("ep001"):
            pass
        assert perfmon.flush(5)  # 503: spooled; the flush's spool pass gets the 400
        stats = perfmon.stats()
        assert (stats["spooled"], stats["rejected"], stats["spool_files"]) == (1, 1, 0)
