"""With a Redis broker, analysis runs on real Celery worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from metrics.analysis.analyze import analyze_session
from metrics.models import EpisodeCost, OperationStat, Session
from tests.factories import script_payload

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT_S = 3


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{port}/{db['NAME']}"


class Workers:
    """Starts `celery worker` processes on the test database; stops them at the end."""

    def __init__(self) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        }
        self.processes: list[subprocess.Popen] = []

    def celery(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "perfmon_site", *args]

    def purge(self) -> None:
        subprocess.run(self.celery("purge", "-f"), cwd=ROOT, env=self.env,
                       capture_output=True, timeout=60, check=True)

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            self.celery("worker", "--pool=solo", "--without-gossip", "--without-mingle",
                        "--loglevel=INFO"),
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            print(output[-3000:])  # shown by pytest only when the test fails


@pytest.fixture
def workers():
    workers = Workers()
    # Tasks left in the queue by an earlier, interrupted run would point at other rows.
    workers.purge()
    yield workers
    workers.stop_all()


def wait_for(condition, *, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def analysis_figures(session: Session) -> dict:
    return {
        "stats": list(OperationStat.objects.filter(session=session).order_by("name")
                      .values_list("name", "occurrences", "self_time_s", "is_bottleneck")),
        "rollups": list(EpisodeCost.objects.values_list("episode", "model", "sessions",
                                                        "calls", "total_tokens")),
    }


def test_worker_analyzes_a_session_after_ingest(api, workers):
    worker = workers.start()
    response = api.post("/sessions", script_payload("ep001_run1", scenes=3))
    assert response.status_code == 201
    assert not settings.CELERY_TASK_ALWAYS_EAGER  # so only the worker can analyze it

    assert wait_for(lambda: Session.objects.filter(analyzed_at__isnull=False).exists())
    session = Session.objects.get()
    bottlenecks = session.operation_stats.filter(is_bottleneck=True)
    assert list(bottlenecks.values_list("name", flat=True)) == ["scene_generation"]
    assert worker.poll() is None


def test_a_worker_killed_mid_task_is_replaced_and_the_task_redone(api, workers):
    api.post("/sessions", script_payload("ep001_run1", scenes=3))  # queued, no worker yet
    session = Session.objects.get()

    # Hold the session's row lock from another connection, so the analysis blocks
    # part-way through its transaction: that is where the worker is killed.
    url = database_url_of_test_db()
    with psycopg.connect(url) as blocker, psycopg.connect(url, autocommit=True) as observer:
        blocker.execute("SELECT 1 FROM metrics_session WHERE id = %s FOR UPDATE", [session.pk])
        doomed = workers.start()
        assert wait_for(lambda: _someone_waits_for_a_lock(observer)), "the task never started"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        blocker.rollback()

    assert Session.objects.get().analyzed_at is None  # the killed run left nothing
    time.sleep(VISIBILITY_TIMEOUT_S + 1)  # the unacknowledged task becomes visible again
    workers.start()

    assert wait_for(lambda: Session.objects.filter(analyzed_at__isnull=False).exists())
    redone = analysis_figures(session)
    # The same figures as a single clean analysis: nothing half-applied, nothing twice.
    analyze_session(session)
    assert analysis_figures(session) == redone
    assert redone["rollups"][0][2] == 1  # the session counted once in its rollup row


def _someone_waits_for_a_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return row[0] > 0
