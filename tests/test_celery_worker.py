"""With a Redis broker, ingest hands analysis to a real Celery worker process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from metrics.models import Session
from tests.factories import script_payload

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process():
    env = {**os.environ, "DATABASE_URL": database_url_of_test_db(),
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    celery = [sys.executable, "-m", "celery", "-A", "perfmon_site"]
    # Tasks left in the queue by an earlier, interrupted run would point at other rows.
    subprocess.run([*celery, "purge", "-f"], cwd=ROOT, env=env, capture_output=True,
                   timeout=60, check=True)
    worker = subprocess.Popen(
        [*celery, "worker", "--pool=solo", "--without-gossip", "--without-mingle",
         "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        print(output[-4000:])  # shown by pytest only when the test fails


def wait_for(condition, *, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_worker_analyzes_a_session_after_ingest(api, celery_worker_process):
    response = api.post("/sessions", script_payload("ep001_run1", scenes=3))
    assert response.status_code == 201
    assert not settings.CELERY_TASK_ALWAYS_EAGER  # so only the worker can analyze it

    assert wait_for(lambda: Session.objects.filter(analyzed_at__isnull=False).exists())
    session = Session.objects.get()
    bottlenecks = session.operation_stats.filter(is_bottleneck=True)
    assert list(bottlenecks.values_list("name", flat=True)) == ["scene_generation"]
    assert celery_worker_process.poll() is None
