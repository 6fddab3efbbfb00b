"""Drills: ingest answers in normal time whether the broker is dead, hung or paused.

Each drill points the Celery app at a broker that misbehaves in one way, sends sessions
through the API (after-commit enqueueing runs inside the request, as in production) and
checks the answers came quickly; then the sweep analyzes what was not enqueued. The
bound is generous (3 s per request) against a publish timeout of 0.5 s: it separates
"bounded" from "held for the 25-60 s the issue measured", not fast from slow.
"""

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import override_settings

from bench.servers import PrivateRedis, free_port
from metrics import dispatch
from metrics.models import Session
from metrics.tasks import sweep_unanalyzed_sessions
from perfmon_site.celery import app as celery_app
from tests.factories import script_payload

pytestmark = pytest.mark.django_db

REQUEST_BOUND_S = 3.0
SESSIONS_PER_DRILL = 4


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Publish to ``url`` for real (not eagerly), then put the test settings back."""
    previous = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    previous_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = url
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = url, False
    dispatch.forget_broker_state()
    try:
        yield
    finally:
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = previous
        if previous_env is None:
            del os.environ["CELERY_BROKER_URL"]
        else:
            os.environ["CELERY_BROKER_URL"] = previous_env
        dispatch.forget_broker_state()


@contextmanager
def hung_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers on them."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def redis():
    server = PrivateRedis().start()
    yield server
    os.kill(server.process.pid, signal.SIGCONT)  # in case a drill left it paused
    server.stop()


def queued(server: PrivateRedis) -> int:
    out = subprocess.run(["redis-cli", "-p", str(server.port), "-n", "0", "llen",
                          celery_app.conf.task_default_queue],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return int(out)


def send_sessions(api, prefix: str, capture) -> list[float]:
    """Send sessions as a generator would; the seconds each request took."""
    took = []
    for n in range(SESSIONS_PER_DRILL):
        began = time.perf_counter()
        with capture(execute=True):  # the after-commit publish, inside the request's time
            response = api.post("/sessions", script_payload(f"{prefix}-{n}"))
        took.append(time.perf_counter() - began)
        assert response.status_code == 201
    return took


def report(drill: str, took: list[float]) -> None:
    # figures for docs/reliability.md (pytest -s)
    print(f"broker {drill}: slowest ingest request {max(took) * 1000:.0f} ms "
          f"over {len(took)} requests")


def assert_analyzed_by_the_sweep(prefix: str) -> None:
    stored = Session.objects.filter(external_id__startswith=prefix)
    assert stored.count() == SESSIONS_PER_DRILL
    assert not stored.filter(analyzed_at__isnull=False).exists()  # nothing was enqueued
    with override_settings(SWEEP_GRACE_S=0):
        sweep_unanalyzed_sessions()  # eager again: analysis runs in-process
    assert not stored.filter(analyzed_at__isnull=True).exists()


def test_a_live_broker_gets_each_analysis_enqueued(api, redis, django_capture_on_commit_callbacks):
    """The control: with the broker well, ingest publishes (so the drills test a timeout,
    not a dispatcher that never publishes)."""
    with broker_at(redis.url):
        send_sessions(api, "live", django_capture_on_commit_callbacks)

    assert queued(redis) == SESSIONS_PER_DRILL


def test_a_dead_broker_does_not_hold_ingest(api, django_capture_on_commit_callbacks, caplog):
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        took = send_sessions(api, "dead", django_capture_on_commit_callbacks)

    report("dead", took)
    assert max(took) < REQUEST_BOUND_S, took
    assert caplog.text.count("broker unavailable") == 1  # logged once, not per request
    assert_analyzed_by_the_sweep("dead")


def test_a_hung_broker_does_not_hold_ingest(api, django_capture_on_commit_callbacks):
    with hung_server() as port, broker_at(f"redis://127.0.0.1:{port}/0"):
        took = send_sessions(api, "hung", django_capture_on_commit_callbacks)

    report("hung", took)
    assert max(took) < REQUEST_BOUND_S, took
    assert_analyzed_by_the_sweep("hung")


def test_a_paused_broker_does_not_hold_ingest_and_is_used_again_once_back(
        api, redis, django_capture_on_commit_callbacks):
    with broker_at(redis.url):
        send_sessions(api, "before", django_capture_on_commit_callbacks)  # a warm connection
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            took = send_sessions(api, "paused", django_capture_on_commit_callbacks)
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        dispatch.forget_broker_state()  # as if the backoff had run out
        send_sessions(api, "after", django_capture_on_commit_callbacks)

    report("paused", took)
    assert max(took) < REQUEST_BOUND_S, took
    # Before and after; while paused, the first publish timed out with its command already
    # in the socket, so Redis may run it once resumed (harmless: analysis is idempotent).
    # After that one the backoff stops publishing.
    assert 2 * SESSIONS_PER_DRILL <= queued(redis) <= 2 * SESSIONS_PER_DRILL + 1
    assert_analyzed_by_the_sweep("paused")
