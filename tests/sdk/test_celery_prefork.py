"""A real Celery prefork worker that recycles its child after every task delivers every
session the children made, without anyone calling ``perfmon.flush()``.

``celery worker -P prefork -c 1 --max-tasks-per-child 1`` on the local Redis broker
(database 13, a queue of this run's own): each task runs in a fresh child, which leaves with
``os._exit()`` right after the task. Each task ends several sessions while the server takes
a while to answer, so the later ones are still queued in the child when it is recycled;
they arrive only because perfmon flushes on ``worker_process_shutdown``. Skipped only when
Redis does not answer on 127.0.0.1:6379.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

import perfmon
from tests.sdk.helpers import ROOT, IngestStub, isolated_perfmon  # noqa: F401

BROKER = "redis://127.0.0.1:6379/13"
TASKS = 4
SESSIONS_PER_TASK = 4
SLOW_ANSWER_S = 0.4  # the 4th session of a task is sent after billiard's 1 s exit pause
DEADLINE_S = 90.0


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not redis_answers(),
                                reason="needs Redis on 127.0.0.1:6379 (the Celery broker)")


@pytest.fixture
def server():
    with IngestStub() as stub:
        stub.rule = lambda payload: time.sleep(SLOW_ANSWER_S)
        yield stub


def test_a_recycled_prefork_child_delivers_every_session(server, tmp_path, monkeypatch):
    from celery import Celery

    # Celery takes CELERY_BROKER_URL over an app's own broker (the PostgreSQL pass sets it
    # for the project's workers): the sender must publish where this worker listens.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    run = uuid.uuid4().hex[:10]
    queue = f"perfmon-sdk-prefork-{run}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PERFMON_") and k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({
        "PYTHONPATH": str(ROOT), perfmon.ENV_URL: server.url, perfmon.ENV_API_KEY: "pm_celery",
        perfmon.ENV_SPOOL_DIR: str(tmp_path / "spool"), "PERFMON_TEST_BROKER": BROKER,
        "PERFMON_TEST_QUEUE": queue,
    })
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.sdk.celery_app", "worker",
         "-P", "prefork", "-c", "1", "--max-tasks-per-child", "1", "-Q", queue,
         "-n", f"perfmon-sdk-{run}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # Not the current app: the project's own Celery app stays the one tests use.
    sender = Celery("perfmon_sdk_sender", broker=BROKER, set_as_current=False)
    prefixes = [f"celery-{run}-task{n}" for n in range(TASKS)]
    ids = [f"{p}-{n}" for p in prefixes for n in range(SESSIONS_PER_TASK)]
    try:
        for prefix in prefixes:
            sender.send_task("perfmon_sdk_prefork.make_sessions", args=[prefix, SESSIONS_PER_TASK],
                             queue=queue)
        server.wait_for(lambda s: all(s.accepted[i] for i in ids) or worker.poll() is not None,
                        DEADLINE_S)
    finally:
        sender.close()
        output = stop(worker)
        clean_up(queue)
    missing = [i for i in ids if not server.accepted[i]]
    assert not missing, f"{len(missing)} of {len(ids)} sessions missing: {missing}\n{output}"
    assert all(server.accepted[i] == 1 for i in ids)
    metadata = [server.sessions[i]["session"]["metadata"] for i in ids]
    assert all(m["flush_hooked"] for m in metadata)
    assert len({m["pid"] for m in metadata}) == TASKS  # one child per task


def stop(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate(timeout=10)
    return output[-4000:]


def clean_up(queue: str) -> None:
    try:
        import redis
    except ImportError:
        return
    client = redis.Redis.from_url(BROKER, socket_timeout=2)
    try:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    except redis.RedisError:
        pass
    finally:
        client.close()
