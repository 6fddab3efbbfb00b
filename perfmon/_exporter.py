"""Background delivery of session payloads to the perfmon server.

One daemon thread drains a bounded queue; the generator only ever pays for ``put_nowait``
(``submit()`` returns False and counts a drop when the queue is full). Payloads are JSON,
gzip-compressed, POSTed one session per request. Connection errors, 429 (honouring
Retry-After) and 5xx are retried with exponential backoff and jitter; 401/403 (a bad API key)
are spooled at once, without retrying, and make ``flush()`` report failure until a payload
gets through; other 4xx are permanent and logged once. What still fails is written to the
spool and resent later, which is safe because the server merges by session, operation and
API-call id. Each payload carries the SDK's own counts in ``session.sdk`` (see _health).
"""

from __future__ import annotations

import atexit
import http.client
import logging
import math
import os
import queue
import random
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from perfmon import _health, _lifecycle, _stream
from perfmon._http import NoRedirect, parse_retry_after
from perfmon._resend import FAILED, REFUSED, REJECTED, SENT, SpoolResender
from perfmon._spool import Spool

log = logging.getLogger("perfmon")

ENDPOINT_PATH = "/api/v1/sessions"
MiB = 1024 * 1024
STAT_KEYS = ("sent", "retried", "spooled", "resent", "dropped", "rejected", "quarantined",
             "spool_errors")
_AUTH_STATUSES = (401, 403)
_EXIT_SPOOL_BUDGET_S = 0.5  # after the exit flush times out, time allowed to spool leftovers


class _Flush:
    __slots__ = ("done", "ok", "deadline")

    def __init__(self, deadline: float) -> None:
        self.done = threading.Event()
        self.ok = True
        self.deadline = deadline  # the spool is drained until then


_STOP = object()


class Exporter(SpoolResender):
    """Sends finished (and optionally running) sessions to ``{url}/api/v1/sessions``."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        spool_dir: Path | None,
        queue_size: int = 1000,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        max_spool_bytes: int = 64 * MiB,
        spool_resend_interval: float = 30.0,
        snapshot_interval: float | None = None,
        exit_timeout: float = 2.0,
        max_payload_bytes: int = 8 * MiB,
    ) -> None:
        self.endpoint = url.rstrip("/") + ENDPOINT_PATH
        self._headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._queue_size = queue_size
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_after = max_retry_after
        self._spool_resend_interval = spool_resend_interval
        self._snapshot_interval = snapshot_interval
        self._exit_timeout = exit_timeout
        self._max_payload_bytes = max_payload_bytes
        self._spool = (Spool(spool_dir, max_spool_bytes, on_error=self._spool_error)
                       if spool_dir is not None else None)
        self._last_answer: tuple[int | None, str] = (None, "")
        self._last_timed_out = False  # the last request got no answer within the timeout
        self._accepted = 0  # payloads the server took, for telling poison from an outage
        self._suspects: dict[str, tuple[int, int]] = {}  # spool file -> (5xx answers, mark)
        self._opener = urllib.request.build_opener(NoRedirect())
        self._random = random.Random()
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._logged: set[str] = set()
        self._tracked: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closed = False
        self._refused = False  # the server refused the API key; cleared by the next success
        self._spool_due = False  # resend the spool on the worker's next turn
        self._spool_dirty = True  # an earlier run may have left files behind
        self._init_runtime()
        atexit.register(self._atexit)
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (e := ref()) is not None and e._after_fork())
        _lifecycle.watch(self)  # flush at a child process's end too (see _lifecycle)
        self._ensure_thread()

    def _after_fork(self) -> None:
        """In a forked child: the same configuration (and spool), but nothing of the parent's
        sessions or counts. What the parent had queued, in flight or tracked is the parent's
        to send; the child's reports count only the child's payloads."""
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._logged = set()
        self._tracked = weakref.WeakSet()
        self._suspects = {}
        self._accepted = 0
        self._last_answer = (None, "")
        self._spool_due = False
        self._init_runtime()

    def _init_runtime(self) -> None:
        """Fresh queue, locks and thread; also run in a forked child, which has no worker
        (and may have inherited a lock that some other thread held at the fork)."""
        self._queue: queue.Queue[Any] = queue.Queue(self._queue_size)
        self._stats_lock = threading.Lock()
        self._tracked_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()  # set at shutdown: stop waiting between retries
        self._inflight: tuple[str, str, list[bytes]] | None = None
        self._pid = os.getpid()

    # -- caller side (any thread; never raises, never blocks) --------------------------------

    def submit(self, session: Any, kind: str = "fin") -> bool:
        """Queue a session for sending; False (and a counted drop) if that is not possible."""
        try:
            if self._closed:
                self._count("dropped")
                return False
            if self._pid != os.getpid():
                self._after_fork()  # forked without the at-fork hook running
            _lifecycle.arm()
            if getattr(session, "_pid", None) not in (None, self._pid):
                log.debug("perfmon: session %s was started in the parent process; the child "
                          "does not send it", getattr(session, "session_id", "?"))
                return False
            self._ensure_thread()
            self._queue.put_nowait((session, kind))
            return True
        except queue.Full:
            self._count("dropped")
            self._log_once("queue-full", "perfmon: export queue is full (%d); dropping session "
                           "%s (counted in stats()['dropped'])", self._queue_size,
                           getattr(session, "session_id", "?"))
            return False
        except Exception:
            log.debug("perfmon: submit failed", exc_info=True)
            return False

    def track(self, session: Any) -> None:
        """Send running snapshots of ``session`` every ``snapshot_interval`` seconds."""
        if self._pid != os.getpid():
            self._after_fork()
        _lifecycle.arm()
        if self._snapshot_interval:
            with self._tracked_lock:
                self._tracked.add(session)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is sent, spooled or dropped, and try
        the spool once. True if that finished within ``timeout``."""
        if self._closed:
            return self._queue.empty()
        deadline = time.monotonic() + timeout
        self._ensure_thread()
        marker = _Flush(deadline)
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic())) and marker.ok

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop accepting sessions, deliver what is queued within ``timeout`` (retries are cut
        short: failures go straight to the spool), then spool whatever is left."""
        if self._closed:
            return True
        timeout = self._exit_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        for session in self._running_tracked():  # their latest state, as running
            try:
                self._queue.put_nowait((session, "run"))
            except queue.Full:
                break
        self._closed = True
        self._closing.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                pass  # the worker also stops once the queue is empty and _closed is set
            thread.join(max(0.0, deadline - time.monotonic()))
        clean = thread is None or not thread.is_alive()
        if not clean or not self._queue.empty():
            self._spool_leftovers(time.monotonic() + _EXIT_SPOOL_BUDGET_S)
        try:
            atexit.unregister(self._atexit)
        except Exception:  # interpreter shutting down
            pass
        return clean

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            result = dict(self._stats)
        result["queued"] = self._queue.qsize()
        result["spool_files"] = self._spool.count() if self._spool is not None else 0
        result["quarantine_files"] = (self._spool.quarantine_count()
                                      if self._spool is not None else 0)
        return result

    def _atexit(self) -> None:
        try:
            self.shutdown(self._exit_timeout)
        except Exception:
            log.debug("perfmon: exit flush failed", exc_info=True)

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="perfmon-exporter", daemon=True
                )
                self._thread.start()

    # -- worker side -------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self._snapshot_interval
        next_snapshot = time.monotonic() + interval if interval else math.inf
        next_spool = time.monotonic() if self._spool is not None else math.inf
        while True:
            now = time.monotonic()
            if now >= next_spool and not self._closed:
                delay = self._safely(self._resend_spool)
                wait_s = self._spool_resend_interval if delay is None else delay
                next_spool = time.monotonic() + min(wait_s, self._spool_resend_interval)
            if now >= next_snapshot and not self._closed:
                self._safely(self._send_snapshots)
                next_snapshot = time.monotonic() + (interval or 0.0)
            wake = min(next_spool, next_snapshot)
            wait = None if wake == math.inf else max(0.0, wake - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                self._safely(self._drain_spool, item.deadline)
                item.ok = not self._refused
                item.done.set()
            else:
                self._safely(self._export, *item)
                if self._spool_due:
                    self._spool_due = False
                    next_spool = time.monotonic()
            if self._closed and self._queue.empty():
                return

    def _safely(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except Exception:  # keep the worker alive whatever a payload does
            self._log_once("worker-error", "perfmon: exporter error", exc_info=True)
            return None

    def _running_tracked(self) -> list[Any]:
        with self._tracked_lock:
            return [s for s in self._tracked if not s.finished]

    def _send_snapshots(self) -> None:
        for session in self._running_tracked():
            self._export(session, "run")

    def _export(self, session: Any, kind: str) -> None:
        session_id = session.session_id
        bodies = self._bodies(session)
        self._inflight = (session_id, kind, bodies)  # for shutdown, if we are still busy then
        try:
            for index, body in enumerate(bodies):
                outcome = self._deliver(body, retry=True)
                if outcome in (FAILED, REFUSED):
                    self._spool_bodies(bodies[index:], session_id, kind)
                    return
                if outcome == REJECTED and self._spool is not None:
                    self._quarantine(body, self._spool.new_name(session_id, kind))
            if kind == "fin" and self._spool is not None:
                self._spool.discard_running(session_id)  # superseded by what was just sent
        finally:
            self._inflight = None
        if self._spool_dirty and not self._closed:
            self._spool_due = True  # the server is answering again: resend the spool next

    def _bodies(self, session: Any) -> list[bytes]:
        """gzip bodies of the session's payload. One over ``max_payload_bytes`` of JSON (or
        over the server's per-payload counts) is split into several requests with the same
        session object, each marked as part ``index`` of ``count`` so the server finishes the
        session only once all have arrived; operations keep their start order, so parents go
        first (see perfmon._stream)."""
        return _stream.encode(session, self._max_payload_bytes, self._report)

    def _report(self, session: Any) -> dict[str, Any] | None:
        with self._stats_lock:
            counts = dict(self._stats)
        try:
            return _health.report(session, counts)
        except Exception:  # the report is a diagnostic: never lose the session over it
            self._log_once("health-error", "perfmon: could not build the SDK report",
                           exc_info=True)
            return None

    def _deliver(self, body: bytes, *, retry: bool) -> str:
        attempt = 0
        while True:
            status, retry_after, detail = self._post(body)
            self._last_answer = (status, detail)
            if status is not None and 200 <= status < 300:
                self._count("sent")
                self._accepted += 1
                self._refused = False
                return SENT
            if status in _AUTH_STATUSES:
                self._refused_key(status, detail)
                return REFUSED
            if status is not None and status not in (408, 429) and status < 500:
                self._count("rejected")
                self._log_once(f"rejected-{status}", "perfmon: the server rejected a session "
                               "payload with HTTP %s (%s); not retrying; set aside with the "
                               "reason in %s (counted in stats()['quarantined']). Further "
                               "rejections with this status are not logged.", status,
                               detail[:300], self._quarantine_place())
                return REJECTED
            log.debug("perfmon: send failed (%s %s)", status, detail)
            if not retry or attempt >= self._max_retries or self._closing.is_set():
                return FAILED
            if self._last_timed_out and self._spool is not None:
                # The server took the request and never answered: more tries would keep the
                # session in memory only, for a minute or more. Spool it now; the spool is
                # resent as soon as the server answers again.
                return FAILED
            if status == 429 and retry_after is not None:
                delay = retry_after
            else:
                delay = self._backoff(attempt)
            if delay > self._max_retry_after:
                return FAILED
            attempt += 1
            self._count("retried")
            if self._closing.wait(delay):
                return FAILED

    def _refused_key(self, status: int, detail: str) -> None:
        self._refused = True
        where = self._spool.directory if self._spool is not None else None
        self._log_once(
            f"refused-{status}",
            "perfmon: %s refused the API key (HTTP %s: %s). Set PERFMON_API_KEY (or "
            "configure(api_key=...)) to a valid key of the project on that server; a key is "
            "shown once when it is created in the admin. %s",
            self.endpoint, status, detail[:200] or "no detail",
            f"Payloads are kept in the spool {where} until a key is accepted."
            if where is not None else "Spooling is off, so these payloads are dropped.",
        )

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": at least half the exponential step, so retries from many
        # generators spread out without collapsing to zero.
        step = min(self._backoff_max, self._backoff_base * (2**attempt))
        return step / 2 + self._random.uniform(0.0, step / 2)

    def _post(self, body: bytes) -> tuple[int | None, float | None, str]:
        self._last_timed_out = False
        request = urllib.request.Request(
            self.endpoint, data=body, headers=self._headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read()
                return response.status, None, ""
        except urllib.error.HTTPError as exc:
            try:
                detail = exc.read(300).decode("utf-8", "replace")
            except Exception:
                detail = ""
            header = exc.headers.get("Retry-After") if exc.headers else None
            retry_after = parse_retry_after(header)
            exc.close()
            return exc.code, retry_after, detail
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._last_timed_out = _timed_out(exc)
            return None, None, f"{type(exc).__name__}: {exc}"  # refused, reset, timeout, DNS

    # -- spool -------------------------------------------------------------------------------

    def _spool_bodies(self, bodies: list[bytes], session_id: str, kind: str) -> None:
        if self._spool is None:
            self._count("dropped", len(bodies))
            self._log_once("no-spool", "perfmon: server unavailable and spooling is off; "
                           "dropping session %s (counted in stats()['dropped'])", session_id)
            return
        self._spool.discard_running(session_id)  # this payload supersedes older snapshots
        for body in bodies:
            if self._spool.write(body, session_id, kind):
                self._count("spooled")
                self._spool_dirty = True
                self._log_once("spooled", "perfmon: server unavailable; spooling payloads to "
                               "%s and resending later", self._spool.directory)
            else:
                self._count("dropped")
                if self._spool.write_error is not None:
                    continue  # logged once as a spool problem
                self._log_once("spool-full", "perfmon: spool %s is full; dropping payloads "
                               "(counted in stats()['dropped'])", self._spool.directory)

    def _spool_leftovers(self, deadline: float) -> None:
        inflight = self._inflight
        if inflight is not None:  # maybe sent already; a resend merges harmlessly
            self._spool_bodies(inflight[2], inflight[0], inflight[1])
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Flush):
                item.done.set()
            elif item is not _STOP:
                if time.monotonic() >= deadline:
                    self._count("dropped")
                    continue
                session, kind = item
                self._spool_bodies(self._bodies(session), session.session_id, kind)

    # -- bookkeeping -------------------------------------------------------------------------

    def _count(self, key: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += amount

    def _log_once(self, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        with self._stats_lock:
            first = key not in self._logged
            self._logged.add(key)
        log.log(logging.WARNING if first else logging.DEBUG, message, *args, exc_info=exc_info)


def _timed_out(exc: BaseException) -> bool:
    """A request sent that got no answer in time (not one refused or reset)."""
    reason = getattr(exc, "reason", None)  # urllib wraps connect errors in URLError
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)

