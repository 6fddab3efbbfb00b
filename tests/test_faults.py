"""Faults: the server, PostgreSQL or the broker goes away; nothing is lost, nothing twice.

Each test runs gunicorn against a private PostgreSQL cluster (and, where it matters, a
private Redis) that it may stop and restart without disturbing anything else (fixtures
in tests/private_services.py).
"""

import subprocess
import sys
import threading
import time

import pytest

import perfmon
from bench.loadgen import run_load, verify_stored
from bench.servers import ROOT, Gunicorn, PrivateRedis, create_api_key, server_env
from tests.analysis.test_celery_worker import wait_for
from tests.private_services import stored

pytestmark = pytest.mark.postgres


def test_sessions_made_while_the_server_is_down_arrive_once_it_is_back(database, tmp_path):
    env = server_env(database)
    key = create_api_key(env, "generator")
    server = Gunicorn(env)  # not started yet: the server is down
    perfmon.configure(url=server.url, api_key=key, spool_dir=tmp_path / "spool",
                      max_retries=2, backoff_base=0.05, backoff_max=0.2,
                      spool_resend_interval=0.5, timeout=2)
    monitor = perfmon.get_performance_monitor()
    slowest_call_s = 0.0
    try:
        for n in range(12):
            began = time.perf_counter()
            with monitor.session(f"outage-{n}", episode="ep001", workflow="script_generation"):
                for step in range(5):
                    with monitor.operation(f"step{step}"):
                        monitor.record_api_call(model="gpt-4o-mini", provider="openai",
                                                prompt_tokens=100, completion_tokens=10)
            slowest_call_s = max(slowest_call_s, time.perf_counter() - began)
        assert wait_for(lambda: perfmon.stats()["spooled"] >= 12, timeout_s=60)

        server.start()
        assert wait_for(lambda: stored(database, "SELECT count(*) FROM metrics_session")
                        == [(12,)], timeout_s=90)
        perfmon.flush(10)
        exporter_stats = perfmon.stats()
    finally:
        perfmon.shutdown(5)
        perfmon.configure(url=None)
        server.stop()

    print(f"server outage: exporter {exporter_stats}, slowest session end "
          f"{slowest_call_s * 1000:.1f} ms")  # figures for docs/reliability.md
    rows = stored(database, "SELECT external_id, operations_count, api_calls_count "
                            "FROM metrics_session ORDER BY external_id")
    assert rows == sorted((f"outage-{n}", 5, 5) for n in range(12))
    assert slowest_call_s < 0.5  # the generator never waited on the dead server


def test_a_postgres_restart_during_ingest_loses_nothing(cluster, database):
    env = server_env(database, INGEST_RATE_LIMIT_PER_MINUTE="0")
    key = create_api_key(env, "load")
    server = Gunicorn(env).start()
    try:
        def restart_postgres() -> None:
            # Once the load is well under way, not on a timer: the machine may be slow.
            wait_for(lambda: stored(database, "SELECT count(*) FROM metrics_session")[0][0]
                     >= 40, timeout_s=60)
            cluster.stop("fast")  # disconnects every session mid-transaction
            time.sleep(1.0)
            cluster.start()

        restarter = threading.Thread(target=restart_postgres)
        restarter.start()
        result = run_load(server.url, [key], threads=6, sessions_per_thread=40,
                          operations=20, api_calls=5, time_limit_s=90)
        restarter.join()
    finally:
        server.stop()

    summary = result.summary()
    print(f"postgres restart under load: {summary}")  # figures for docs/reliability.md
    assert summary["gave_up"] == 0
    assert 500 not in result.statuses  # errors the client can act on: 503 or no answer
    assert result.statuses[503] + result.statuses[0] > 0, f"restart unnoticed: {summary}"
    check = verify_stored(database, result.sessions)
    assert (check["missing"], check["unexpected"], check["wrong"]) == ([], [], [])
    assert check["stored"] == 6 * 40


def test_with_the_broker_down_ingest_answers_and_the_sweep_analyzes_later(database):
    broker = PrivateRedis()  # allocated, not started: the broker is down
    env = server_env(database, CELERY_BROKER_URL=broker.url, SWEEP_GRACE_S="0")
    key = create_api_key(env, "generator")
    server = Gunicorn(env).start()
    worker = None
    try:
        result = run_load(server.url, [key], threads=2, sessions_per_thread=5,
                          operations=10, api_calls=3, time_limit_s=60)
        assert dict(result.statuses) == {201: 10, 200: 2}  # two resends among them
        assert stored(database, "SELECT count(*) FROM metrics_session "
                                "WHERE analyzed_at IS NULL") == [(10,)]

        broker.start()
        celery = [sys.executable, "-m", "celery", "-A", "perfmon_site"]
        worker = subprocess.Popen([*celery, "worker", "--pool=solo", "--without-gossip",
                                   "--without-mingle", "--loglevel=WARNING"],
                                  cwd=ROOT, env=env)
        subprocess.run([*celery, "call", "metrics.tasks.sweep_unanalyzed_sessions"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
        assert wait_for(lambda: stored(database, "SELECT count(*) FROM metrics_session "
                                                 "WHERE analyzed_at IS NULL") == [(0,)],
                        timeout_s=90)
    finally:
        server.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        broker.stop()

    stats = stored(database, "SELECT count(DISTINCT session_id) FROM metrics_operationstat")
    assert stats == [(10,)]
