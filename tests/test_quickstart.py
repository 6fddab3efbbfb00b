"""The README's run command, in its non-interactive mode, on a clean database.

Runs `manage.py quickstart --no-serve` as a user would (a real server, the simulator
sending through the SDK's exporter over HTTP) and then reads the database it filled.
"""

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quickstart(db_path: Path, port: int) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "PERFMON_"))}
    env["SQLITE_PATH"] = str(db_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "quickstart", "--no-serve", "--port", str(port)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def simulator_report(output: str) -> dict:
    line = next(line for line in output.splitlines() if line.startswith('{"sessions"'))
    return json.loads(line)


def printed_password(output: str) -> str:
    return re.search(r"password: (\S+)", output).group(1)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("quickstart") / "db.sqlite3"
    output = quickstart(db_path, free_port())
    return db_path, output


def query(db_path: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_demo_session_arrived_over_http_with_the_simulators_totals(first_run):
    db_path, output = first_run
    report = simulator_report(output)

    assert report["delivered"] is True
    assert report["exporter"]["sent"] == len(report["sessions"]) == 16
    stored = {
        row[0]: row[1:]
        for row in query(db_path, "SELECT external_id, status, operations_count, "
                                  "api_calls_count, total_tokens, cache_hits, cache_misses "
                                  "FROM metrics_session")
    }
    expected = {
        s["id"]: (s["status"], s["operations"], s["api_calls"], s["total_tokens"],
                  s["cache_hits"], s["cache_misses"])
        for s in report["sessions"]
    }
    assert stored == expected
    # The simulator's key was used: the sessions came through the API, not the database.
    [(last_used,)] = query(db_path, "SELECT last_used_at FROM ingest_apikey "
                                    "WHERE name = 'demo simulator' AND revoked_at IS NULL")
    assert last_used is not None


def test_the_printed_login_works(first_run):
    db_path, output = first_run
    [(encoded, is_superuser)] = query(
        db_path, "SELECT password, is_superuser FROM auth_user WHERE username = 'demo'")

    assert check_password(printed_password(output), encoded)
    assert is_superuser
    assert "http://127.0.0.1:" in output


def test_the_regression_episode_is_flagged_once_analysis_runs(first_run):
    db_path, _ = first_run
    flagged = query(db_path, "SELECT s.external_id, r.metric, r.name FROM metrics_regression r "
                             "JOIN metrics_session s ON s.id = r.session_id")

    assert ("ep012_run1", "self_time_s", "dialogue") in flagged
    assert {row[0] for row in flagged} == {"ep012_run1"}


def alerts_received(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Alert received")]


def test_the_regression_and_the_failed_run_each_alert_once_with_a_valid_signature(first_run):
    db_path, output = first_run
    received = alerts_received(output)

    # The quickstart's receiver checked each message's signature with the channel's secret.
    assert len(received) == 2
    assert all(line.startswith("Alert received (signature valid): ") for line in received)
    assert sum("ep012 take 1 regressed: " in line for line in received) == 1
    assert sum("ep002 take 3 failed after " in line for line in received) == 1
    events = query(db_path, "SELECT e.kind, s.external_id FROM metrics_alertevent e "
                            "JOIN metrics_session s ON s.id = e.session_id ORDER BY e.kind")
    assert events == [("regression", "ep012_run1"), ("session_failed", "ep002_run3")]
    assert query(db_path, "SELECT status, attempts, last_status FROM metrics_alertdelivery"
                 ) == [("sent", 1, 200)] * 2


def test_running_it_again_duplicates_nothing(first_run):
    db_path, first_output = first_run
    counts = "SELECT (SELECT count(*) FROM metrics_session), (SELECT count(*) FROM " \
             "metrics_operation), (SELECT count(*) FROM metrics_apicall)"
    before = query(db_path, counts)

    output = quickstart(db_path, free_port())

    assert query(db_path, counts) == before
    assert printed_password(output) != printed_password(first_output)
    assert query(db_path, "SELECT count(*) FROM ingest_apikey WHERE revoked_at IS NULL") == [(1,)]
    # Re-analysing the resent sessions alerts on nothing: no message, no new delivery.
    assert alerts_received(output) == []
    assert query(db_path, "SELECT count(*) FROM metrics_alertdelivery") == [(2,)]
