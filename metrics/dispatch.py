"""Enqueueing tasks after commit without ever holding a request on the broker for long.

A dead, hung or paused broker must not hold an ingest request: the session is stored
either way, and the periodic sweep (metrics.tasks.sweep_unanalyzed_sessions) enqueues
whatever was not analyzed once the broker is back. So publishing has a short connect and
read timeout, no publish retry, and after a failure the broker is left alone for a while
(logged once per outage) instead of costing every request the timeout again.
"""

import logging
import threading
import time
from functools import partial

from django.db import transaction

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 0.5
SOCKET_TIMEOUT_S = 0.5
# After a failed publish, skip publishing for this long (the sweep covers the gap).
BROKER_BACKOFF_S = 30.0
PUBLISH_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": CONNECT_TIMEOUT_S,
    "socket_timeout": SOCKET_TIMEOUT_S,
    # kombu's connect retries: once, within the same short budget.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "connect_retries_timeout": CONNECT_TIMEOUT_S,
}


class _BrokerState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.away_until = 0.0
        self.local = threading.local()  # one publishing connection per thread

    def is_away(self) -> bool:
        return time.monotonic() < self.away_until

    def mark_away(self, exc: BaseException) -> None:
        with self.lock:
            first = self.away_until == 0.0
            self.away_until = time.monotonic() + BROKER_BACKOFF_S
        if first:
            logger.warning("broker unavailable (%s); analysis is left to the sweep", exc)

    def mark_back(self) -> None:
        with self.lock:
            was_away, self.away_until = self.away_until != 0.0, 0.0
        if was_away:
            logger.info("broker reachable again; enqueueing analysis after ingest")


_state = _BrokerState()


def forget_broker_state() -> None:
    """Start afresh: no backoff, no cached connection (after the broker URL changed)."""
    global _state
    _drop_connection()
    _state = _BrokerState()


def enqueue_after_commit(task, *args, countdown: float | None = None) -> None:
    """Publish ``task(*args)`` once the current transaction commits; never raises.

    ``countdown``: seconds the broker holds the task before a worker may run it (the
    embedded default runs it at once).
    """
    transaction.on_commit(partial(publish_now, task, *args, countdown=countdown), robust=True)


def publish_now(task, *args, countdown: float | None = None) -> bool:
    """Publish with a bounded wait; False if it was not enqueued (the sweep will)."""
    app = task.app
    if app.conf.task_always_eager:
        return _run_eagerly(task, args)
    if _state.is_away():
        return False
    try:
        task.apply_async(args, connection=_connection(app), retry=False, countdown=countdown)
    except Exception as exc:  # any broker failure: the session is stored regardless
        _drop_connection()
        _state.mark_away(exc)
        return False
    _state.mark_back()
    return True


def _run_eagerly(task, args: tuple) -> bool:
    try:
        task.apply_async(args)
    except Exception:
        # The embedded default runs analysis in-process; its failure must not fail
        # ingest. The session's analyzed_at stays behind, so the sweep retries it.
        logger.exception("%s%r failed; the sweep will retry", task.name, args)
        return False
    return True


def _connection(app):
    conn = getattr(_state.local, "connection", None)
    if conn is None:
        conn = app.connection_for_write(
            connect_timeout=CONNECT_TIMEOUT_S, transport_options=PUBLISH_TRANSPORT_OPTIONS
        )
        _state.local.connection = conn
    return conn


def _drop_connection() -> None:
    conn = getattr(_state.local, "connection", None)
    _state.local.connection = None
    if conn is not None:
        try:
            conn.release()
        except Exception:  # closing a broken connection may fail the same way
            logger.debug("closing the broken broker connection failed", exc_info=True)
