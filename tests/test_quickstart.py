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

from ingest.management.commands.quickstart import Command
from ingest.models import hash_secret

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quickstart(db_path: Path, port: int) -> tuple[str, str]:
    """Its stdout and stderr; the simulator's JSON report goes next to the database."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "CELERY_BROKER_URL", "PERFMON_"))}
    env["SQLITE_PATH"] = str(db_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "quickstart", "--no-serve", "--port", str(port),
         "--report", str(db_path.with_suffix(".report.json"))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, result.stderr


def simulator_report(db_path: Path) -> dict:
    return json.loads(db_path.with_suffix(".report.json").read_text(encoding="utf-8"))


def analysis(db_path: Path) -> dict[str, list[tuple]]:
    """Every judgement analysis made, by session id: budgets, regressions, findings.

    Without the measured values: the simulator runs in real time, so durations differ a
    little between runs; the judgements must not."""
    return {
        "budgets": query(db_path, "SELECT s.external_id, b.name, c.passed "
                                  "FROM metrics_budgetcheck c JOIN metrics_session s ON "
                                  "s.id = c.session_id JOIN metrics_budget b ON "
                                  "b.id = c.budget_id ORDER BY 1, 2"),
        "regressions": query(db_path, "SELECT s.external_id, r.metric, r.name "
                                      "FROM metrics_regression r JOIN "
                                      "metrics_session s ON s.id = r.session_id ORDER BY 1, 2, 3"),
        "findings": query(db_path, "SELECT s.external_id, f.kind, f.subject FROM "
                                   "metrics_finding f JOIN metrics_session s ON "
                                   "s.id = f.session_id ORDER BY 1, 2, 3"),
    }


def printed_password(output: str) -> str:
    return re.search(r"password: (\S+)", output).group(1)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("quickstart") / "db.sqlite3"
    output, errors = quickstart(db_path, free_port())
    return db_path, output, errors


def query(db_path: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_demo_session_arrived_over_http_with_the_simulators_totals(first_run):
    db_path, _, _ = first_run
    report = simulator_report(db_path)

    assert report["delivered"] is True
    assert len(report["sessions"]) == 16
    # Every session's final payload, and the running snapshots sent meanwhile (every 10 s).
    assert report["exporter"]["sent"] >= 16
    assert (report["exporter"]["dropped"], report["exporter"]["rejected"]) == (0, 0)
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
    db_path, output, _ = first_run
    [(encoded, is_superuser)] = query(
        db_path, "SELECT password, is_superuser FROM auth_user WHERE username = 'demo'")

    assert check_password(printed_password(output), encoded)
    assert is_superuser
    assert "http://127.0.0.1:" in output


def test_the_regression_episode_is_flagged_once_analysis_runs(first_run):
    db_path, _, _ = first_run
    flagged = query(db_path, "SELECT s.external_id, r.metric, r.name FROM metrics_regression r "
                             "JOIN metrics_session s ON s.id = r.session_id")

    assert ("ep012_run1", "self_time_s", "dialogue") in flagged
    assert {row[0] for row in flagged} == {"ep012_run1"}


def alerts_received(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Alert received")]


def test_the_regression_and_the_failed_run_each_alert_once_with_a_valid_signature(first_run):
    db_path, output, _ = first_run
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


def test_the_printed_api_key_works_with_the_printed_env_lines(first_run):
    db_path, output, _ = first_run
    url = re.search(r"^\s*export PERFMON_URL=(\S+)$", output, re.MULTILINE).group(1)
    key = re.search(r"^\s*export PERFMON_API_KEY=(\S+)$", output, re.MULTILINE).group(1)
    [(prefix, secret_hash)] = query(db_path, "SELECT prefix, secret_hash FROM ingest_apikey "
                                             "WHERE revoked_at IS NULL")

    assert url.startswith("http://127.0.0.1:")
    assert key.startswith(prefix + "_")
    assert hash_secret(key) == secret_hash


def test_the_output_is_for_people(first_run):
    _, output, errors = first_run

    assert "No hostname was supplied" not in output + errors  # no broker on the default
    assert max(len(line) for line in output.splitlines()) < 200  # no JSON dump
    # --no-serve: the server it used is gone, and the output says so.
    assert "Serving" not in output and "is ready at" not in output
    assert "the server has stopped" in output


def test_every_option_has_help():
    parser = Command().create_parser("manage.py", "quickstart")
    ours = {option: action.help for action in parser._actions
            for option in action.option_strings
            if option in {"--host", "--port", "--no-serve", "--episodes", "--seed", "--speed",
                          "--report"}}

    assert len(ours) == 7
    assert all(ours.values()), ours


def test_running_it_again_duplicates_nothing_and_judges_the_same(first_run):
    db_path, first_output, _ = first_run
    counts = "SELECT (SELECT count(*) FROM metrics_session), (SELECT count(*) FROM " \
             "metrics_operation), (SELECT count(*) FROM metrics_apicall)"
    before = query(db_path, counts)
    judged = analysis(db_path)

    output, _ = quickstart(db_path, free_port())

    assert query(db_path, counts) == before
    assert analysis(db_path) == judged
    assert printed_password(output) != printed_password(first_output)
    assert query(db_path, "SELECT count(*) FROM ingest_apikey WHERE revoked_at IS NULL") == [(1,)]
    # Re-analysing the resent sessions alerts on nothing: no message, no new delivery.
    assert alerts_received(output) == []
    assert query(db_path, "SELECT count(*) FROM metrics_alertdelivery") == [(2,)]
