"""The Celery app that tests/sdk/test_celery_prefork.py runs in a real prefork worker.

No Django: the broker and queue come from the environment. The worker's main process
configures perfmon from ``PERFMON_URL`` when it imports this module (before it forks its
pool children), as an application would; the children inherit that exporter.
"""

from __future__ import annotations

import os

from celery import Celery

import perfmon
from perfmon import _lifecycle

BROKER = os.environ.get("PERFMON_TEST_BROKER", "redis://127.0.0.1:6379/13")
QUEUE = os.environ.get("PERFMON_TEST_QUEUE", "perfmon-sdk-prefork")
app = Celery("perfmon_sdk_prefork", broker=BROKER, set_as_current=False)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)

if os.environ.get(perfmon.ENV_URL):
    perfmon.configure(exit_timeout=float(os.environ.get("PERFMON_TEST_EXIT_TIMEOUT", "5")))

monitor = perfmon.get_performance_monitor()


@app.task(name="perfmon_sdk_prefork.make_sessions")
def make_sessions(prefix: str, count: int) -> None:
    """``count`` sessions, ended one after the other; never flushes."""
    for number in range(count):
        with monitor.session(f"{prefix}-{number}", workflow="celery_prefork") as session:
            with monitor.operation("scene", index=number):
                monitor.increment("scenes_generated")
            session.metadata["pid"] = os.getpid()
            session.metadata["flush_hooked"] = _lifecycle._celery_connected
