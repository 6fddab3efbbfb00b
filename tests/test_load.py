"""Concurrent clients against gunicorn on PostgreSQL: every session stored exactly once.

A bounded version of bench/load.py that runs in CI; the benchmark runs the full load.
"""

import pytest

from bench.loadgen import run_load, verify_stored
from bench.servers import Gunicorn, create_api_key, server_env

pytestmark = pytest.mark.postgres


def test_concurrent_clients_sending_resending_and_flushing_in_parts(database):
    env = server_env(database, INGEST_RATE_LIMIT_PER_MINUTE="0")
    keys = [create_api_key(env, f"fleet {n}") for n in range(2)]
    server = Gunicorn(env, workers=2).start()
    try:
        result = run_load(server.url, keys, threads=12, sessions_per_thread=20,
                          operations=20, api_calls=5, time_limit_s=120)
    finally:
        server.stop()

    summary = result.summary()
    assert summary["sessions"] == 12 * 20, summary
    assert summary["server_errors"] == 0
    assert summary["gave_up"] == 0
    check = verify_stored(database, result.sessions)
    assert (check["missing"], check["unexpected"], check["wrong"]) == ([], [], [])
    # every tenth session went in two parts and every tenth was resent: both merge
    assert result.statuses[200] == 12 * 2 * 2
