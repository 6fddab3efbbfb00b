"""Resending the spool: oldest first, a backlog at network speed, and a payload the server
refuses (or keeps breaking on) set aside in the quarantine instead of blocking the rest.

A mixin of ``Exporter``: it uses the exporter's spool, ``_deliver`` and counters.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SENT, REJECTED, FAILED, REFUSED = "sent", "rejected", "failed", "refused"
# 5xx that mean "the server is unavailable" (retry everything later) rather than "this payload
# breaks the server" (quarantine it once it has failed _POISON_ANSWERS times while the server
# accepted other payloads).
_UNAVAILABLE = (502, 503, 504)
_POISON_ANSWERS = 3
_SUSPECT_RETRY_S = 1.0  # next spool pass while a payload is suspected of breaking the server
_SPOOL_BATCH = 50  # files resent per pass, so queued sessions are not starved
_STOP_PASS, _SUSPECT, _SKIPPED = "stop-pass", "suspect", "skipped"


class SpoolResender:
    _spool: Any
    _last_answer: tuple[int | None, str]
    _accepted: int
    _suspects: dict[str, tuple[int, int]]
    _spool_dirty: bool
    endpoint: str

    # Provided by Exporter.
    def _deliver(self, body: bytes, *, retry: bool) -> str:
        raise NotImplementedError

    def _count(self, key: str, amount: int = 1) -> None:
        raise NotImplementedError

    def _log_once(self, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        raise NotImplementedError

    def _resend_spool(self) -> float | None:
        """One pass over (at most ``_SPOOL_BATCH`` of) the spool, oldest first. Returns when to
        pass again: 0 with more to send, soon while a payload is suspected of breaking the
        server, None (the usual interval) when done or when the server is unavailable."""
        if self._spool is None:
            return None
        pending = self._spool.pending()
        if not pending:
            self._spool_dirty = False
            return None
        failed_in_a_row = 0
        for path in pending[:_SPOOL_BATCH]:
            outcome = self._resend_file(path)
            if outcome == _STOP_PASS:
                return None
            # Two payloads in a row breaking the server: it is broken, not the payloads.
            failed_in_a_row = failed_in_a_row + 1 if outcome == _SUSPECT else 0
            if failed_in_a_row >= 2:
                return None
        self._spool_dirty = len(pending) > _SPOOL_BATCH
        if self._spool_dirty:
            return 0.0  # a backlog goes out at network speed, a batch at a time
        return _SUSPECT_RETRY_S if self._suspects else None

    def _drain_spool(self, deadline: float) -> None:
        """Pass over the spool until it is empty, stuck, or ``deadline`` (for flush)."""
        while self._resend_spool() == 0.0 and time.monotonic() < deadline:
            pass

    def _resend_file(self, path: Path) -> str:
        spool = self._spool
        assert spool is not None
        claimed = spool.claim(path)
        if claimed is None:
            return _SKIPPED  # another sender has it
        try:
            body = claimed.read_bytes()
        except OSError as exc:
            spool.release(claimed)
            self._spool_error("reading", exc)
            return _SKIPPED
        outcome = self._deliver(body, retry=False)
        status = self._last_answer[0]
        if outcome == SENT:
            self._count("resent")
        elif outcome == REJECTED or (outcome == FAILED and self._poisoned(path.name, status)):
            self._quarantine(body, path.name)
        elif outcome == FAILED and status is not None and status >= 500 and (
                status not in _UNAVAILABLE):
            spool.release(claimed)
            return _SUSPECT  # try the payloads behind it; it may be this one
        else:  # unreachable, throttled, unavailable or a refused key: wait for the next pass
            spool.release(claimed)
            return _STOP_PASS
        spool.remove(claimed)
        self._suspects.pop(path.name, None)
        return outcome

    def _poisoned(self, name: str, status: int | None) -> bool:
        """True once this file got its ``_POISON_ANSWERS``-th 5xx (other than 502/503/504)
        while the server accepted other payloads since its first one."""
        if status is None or status < 500 or status in _UNAVAILABLE:
            return False
        answers, mark = self._suspects.get(name, (0, self._accepted))
        answers += 1
        if answers >= _POISON_ANSWERS and self._accepted > mark:
            return True
        if len(self._suspects) < 10 * _SPOOL_BATCH:  # bounded memory
            self._suspects[name] = (answers, mark)
        return False

    def _quarantine(self, body: bytes, name: str) -> None:
        status, detail = self._last_answer
        reason = {"status": status, "detail": detail[:1000], "endpoint": self.endpoint,
                  "at": datetime.now(UTC).isoformat()}
        spool = self._spool
        if spool is not None and spool.quarantine(body, name, reason):
            self._count("quarantined")
            if status is not None and status >= 500:
                self._log_once("quarantined-5xx", "perfmon: a spooled payload kept getting "
                               "HTTP %s while others were accepted; set aside with the reason "
                               "in %s (counted in stats()['quarantined'])", status,
                               spool.quarantine_directory)
        else:
            self._count("dropped")

    def _quarantine_place(self) -> str:
        spool = self._spool
        return str(spool.quarantine_directory) if spool is not None else "nowhere (no spool)"

    def _spool_error(self, action: str, exc: OSError) -> None:
        self._count("spool_errors")
        self._log_once("spool-problem", "perfmon: spool problem while %s (%s: %s); payloads "
                       "that cannot be spooled are dropped and counted in stats()['dropped'] "
                       "(errors in stats()['spool_errors']). Further problems of this kind are "
                       "not logged.", action, type(exc).__name__, exc)
