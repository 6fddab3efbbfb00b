"""A directory of gzip payloads the server has not taken yet.

One file per request body, named so that a plain sort is oldest first::

    <time_ns>-<pid>-<seq>.<kind>.<session hash>.gz      kind: "run" (running snapshot) | "fin"

A sender claims a file by renaming it (atomic on one filesystem), so several processes can
share a spool without sending a file twice at the same time; a claim left by a process that
died is taken back after ``STALE_CLAIM_S``. Resending is always safe: the server merges by
session, operation and API-call id.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("perfmon")

STALE_CLAIM_S = 600.0
_SUFFIX = ".gz"
_CLAIM = ".claim"


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(self.directory))
        except FileNotFoundError:
            return []

    def size(self) -> int:
        total = 0
        for entry in self._entries():
            try:
                total += entry.stat().st_size
            except OSError:
                pass
        return total

    def write(self, body: bytes, session_id: str, kind: str) -> bool:
        """Store one body; False when the spool is full or the disk refuses."""
        try:
            with self._lock:  # the worker and the exit flush may both be writing
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                if self.size() + len(body) > self.max_bytes:
                    return False
                name = (
                    f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}"
                    f".{kind}.{session_key(session_id)}{_SUFFIX}"
                )
                tmp = self.directory / f".{name}.tmp"
                tmp.write_bytes(body)
                os.replace(tmp, self.directory / name)  # readers never see half a file
            return True
        except OSError as exc:
            log.warning("perfmon: cannot write to spool %s: %s", self.directory, exc)
            return False

    def pending(self) -> list[Path]:
        """Unclaimed files, oldest first (stale claims are taken back first)."""
        now = time.time()
        names = []
        for entry in self._entries():
            if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
                names.append(entry.name)
            elif entry.name.endswith(_CLAIM):
                try:
                    stale = now - entry.stat().st_mtime > STALE_CLAIM_S
                    if stale:
                        original = entry.name.rsplit(".", 2)[0]
                        os.rename(entry.path, self.directory / original)
                        names.append(original)
                except OSError:
                    pass
        return [self.directory / name for name in sorted(names)]

    def claim(self, path: Path) -> Path | None:
        claimed = path.with_name(f"{path.name}.{os.getpid()}{_CLAIM}")
        try:
            os.rename(path, claimed)
            os.utime(claimed)  # the claim's age, for stale-claim recovery
        except OSError:
            return None  # another sender took it, or it is gone
        return claimed

    def release(self, claimed: Path) -> None:
        try:
            os.rename(claimed, claimed.with_name(claimed.name.rsplit(".", 2)[0]))
        except OSError:
            pass

    def remove(self, claimed: Path) -> None:
        try:
            claimed.unlink()
        except FileNotFoundError:
            pass

    def discard_running(self, session_id: str) -> int:
        """Delete unclaimed running snapshots of a session (a newer payload supersedes them)."""
        marker = f".run.{session_key(session_id)}{_SUFFIX}"
        removed = 0
        for path in self.pending():
            if path.name.endswith(marker):
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def count(self) -> int:
        return len(self.pending())
