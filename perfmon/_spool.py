"""A directory of gzip payloads the server has not taken yet.

One file per request body, named so that a plain sort is oldest first::

    <time_ns>-<pid>-<seq>.<kind>.<session hash>.gz      kind: "run" (running snapshot) | "fin"

A sender claims a file by renaming it (atomic on one filesystem), so several processes can
share a spool without sending a file twice at the same time; a claim left by a process that
died is taken back after ``STALE_CLAIM_S``. Resending is always safe: the server merges by
session, operation and API-call id.

A payload the server refuses for good is moved to ``quarantine/`` beside the files, with a
``<name>.reason.json`` saying why, so it never blocks the payloads behind it; the quarantine
keeps at most a quarter of the spool's bytes. No filesystem problem is raised: each is handed
to ``on_error`` (the exporter logs it once and counts it) and the call reports failure.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("perfmon")

STALE_CLAIM_S = 600.0
_SUFFIX = ".gz"
_CLAIM = ".claim"
QUARANTINE = "quarantine"
_REASON = ".reason.json"


def _ignore(action: str, exc: OSError) -> None:
    log.debug("perfmon: spool %s failed: %s", action, exc)


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:16]


class Spool:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        on_error: Callable[[str, OSError], None] = _ignore,
    ) -> None:
        self.directory = directory
        self.quarantine_directory = directory / QUARANTINE
        self.max_bytes = max_bytes
        self._on_error = on_error
        self.write_error: OSError | None = None  # why the latest write failed, if it did
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def _entries(self, directory: Path | None = None) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(directory or self.directory))
        except FileNotFoundError:
            return []
        except OSError as exc:  # not a directory, no permission, ...
            self._on_error("listing", exc)
            return []

    def size(self, directory: Path | None = None) -> int:
        total = 0
        for entry in self._entries(directory):
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat().st_size
            except OSError:
                pass
        return total

    def write(self, body: bytes, session_id: str, kind: str) -> bool:
        """Store one body; False when the spool is full or the disk refuses (then
        ``write_error`` says why)."""
        self.write_error = None
        try:
            with self._lock:  # the worker and the exit flush may both be writing
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                if self.size() + len(body) > self.max_bytes:
                    return False
                name = self.new_name(session_id, kind)
                tmp = self.directory / f".{name}.tmp"
                tmp.write_bytes(body)
                os.replace(tmp, self.directory / name)  # readers never see half a file
            return True
        except OSError as exc:
            self.write_error = exc
            self._on_error("writing", exc)
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

    def quarantine_count(self) -> int:
        return sum(1 for e in self._entries(self.quarantine_directory)
                   if e.name.endswith(_SUFFIX))

    def quarantine(self, body: bytes, name: str, reason: dict[str, Any]) -> bool:
        """Set ``body`` aside under ``name`` with ``reason``; False if there is no room or the
        disk refuses (the caller counts it as dropped)."""
        target = self.quarantine_directory
        try:
            with self._lock:
                target.mkdir(mode=0o700, parents=True, exist_ok=True)
                if self.size(target) + len(body) > self.max_bytes // 4:
                    return False
                tmp = target / f".{name}.tmp"
                tmp.write_bytes(body)
                os.replace(tmp, target / name)
                (target / f"{name}{_REASON}").write_text(json.dumps(reason, default=str))
            return True
        except OSError as exc:
            self._on_error("quarantining", exc)
            return False

    def new_name(self, session_id: str, kind: str) -> str:
        return (f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}"
                f".{kind}.{session_key(session_id)}{_SUFFIX}")

    @staticmethod
    def original_name(claimed: Path) -> str:
        return claimed.name.rsplit(".", 2)[0]
