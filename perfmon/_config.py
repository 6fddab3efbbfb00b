"""Environment variables, ``configure()``, and the process-wide exporter."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from perfmon._exporter import Exporter, MiB

log = logging.getLogger("perfmon")

#: Set to 1/true/yes/on to make every decorator and record call a near no-op.
ENV_DISABLED = "PERFMON_DISABLED"
#: Base URL of the perfmon server, e.g. ``https://perfmon.example.com``.
ENV_URL = "PERFMON_URL"
#: API key sent as ``Authorization: Bearer <key>``.
ENV_API_KEY = "PERFMON_API_KEY"
#: Directory for payloads the server could not take yet.
ENV_SPOOL_DIR = "PERFMON_SPOOL_DIR"
#: Default ``environment`` of new sessions ("production", "staging", ...).
ENV_ENVIRONMENT = "PERFMON_ENVIRONMENT"
#: Default ``release`` of new sessions ("generator 1.4.2").
ENV_RELEASE = "PERFMON_RELEASE"
ENV_SNAPSHOT_INTERVAL = "PERFMON_SNAPSHOT_INTERVAL"
#: Running sessions are sent this often (seconds) unless configured otherwise; 0 is off.
DEFAULT_SNAPSHOT_INTERVAL_S = 10.0

_TRUE = {"1", "true", "yes", "on"}

_lock = threading.Lock()
_exporter: Exporter | None = None
_env_checked = False  # PERFMON_URL is looked at once, on first use, if configure() was not


def env_disabled() -> bool:
    return os.environ.get(ENV_DISABLED, "").strip().lower() in _TRUE


def default_spool_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home directory
        root = Path(tempfile.gettempdir())
    return root / "perfmon" / "spool"


def configure(
    url: str | None = None,
    api_key: str | None = None,
    *,
    spool_dir: str | os.PathLike[str] | bool | None = None,
    snapshot_interval: float | None = None,
    queue_size: int = 1000,
    timeout: float = 10.0,
    max_retries: int = 4,
    backoff_base: float = 0.5,
    backoff_max: float = 30.0,
    max_retry_after: float = 120.0,
    max_spool_bytes: int = 64 * MiB,
    spool_resend_interval: float = 30.0,
    exit_timeout: float = 2.0,
    max_payload_bytes: int = 8 * MiB,
) -> bool:
    """Send ended sessions to a perfmon server in the background. Returns True if exporting.

    ``url`` and ``api_key`` default to ``PERFMON_URL`` and ``PERFMON_API_KEY``; with no URL at
    all, exporting is switched off. ``spool_dir`` (default ``PERFMON_SPOOL_DIR``, else a
    per-user cache directory; ``False`` for none) keeps what could not be sent, up to
    ``max_spool_bytes``. ``snapshot_interval`` sends running sessions every so many seconds,
    so the dashboard shows a run in progress (default ``PERFMON_SNAPSHOT_INTERVAL``, else
    10; 0 for never). Retries: ``max_retries`` with backoff from ``backoff_base`` doubling up to
    ``backoff_max`` seconds, or the server's Retry-After up to ``max_retry_after``. At exit
    the queue gets ``exit_timeout`` seconds. Calling it again replaces the exporter.
    """
    global _exporter, _env_checked
    url = url or os.environ.get(ENV_URL) or None
    if api_key is None:
        api_key = os.environ.get(ENV_API_KEY, "")
    new = None
    if url:
        new = Exporter(
            url,
            api_key,
            spool_dir=_spool_path(spool_dir, url, api_key),
            queue_size=queue_size,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            max_spool_bytes=max_spool_bytes,
            spool_resend_interval=spool_resend_interval,
            snapshot_interval=_snapshot_interval(snapshot_interval),
            exit_timeout=exit_timeout,
            max_payload_bytes=max_payload_bytes,
        )
    with _lock:
        old, _exporter, _env_checked = _exporter, new, True
    if old is not None:
        old.shutdown(timeout=min(exit_timeout, 1.0))
    return new is not None


def _snapshot_interval(configured: float | None) -> float | None:
    if configured is None:
        text = os.environ.get(ENV_SNAPSHOT_INTERVAL, "").strip()
        try:
            configured = float(text) if text else DEFAULT_SNAPSHOT_INTERVAL_S
        except ValueError:
            log.warning("perfmon: %s=%r is not a number of seconds; using %g",
                        ENV_SNAPSHOT_INTERVAL, text, DEFAULT_SNAPSHOT_INTERVAL_S)
            configured = DEFAULT_SNAPSHOT_INTERVAL_S
    return configured if configured > 0 else None


def _spool_path(
    spool_dir: str | os.PathLike[str] | bool | None, url: str, api_key: str
) -> Path | None:
    if spool_dir is False:
        return None
    if spool_dir is None or spool_dir is True:
        env = os.environ.get(ENV_SPOOL_DIR)
        base = Path(env) if env else default_spool_dir()
    else:
        base = Path(spool_dir)
    # One subdirectory per server and key, so a spooled payload only ever goes where it was
    # meant to go, even if the configuration changes between runs.
    target = hashlib.sha256(f"{url.rstrip('/')}\0{api_key}".encode()).hexdigest()[:12]
    return base / target


def get_exporter() -> Exporter | None:
    """The configured exporter; on first use, configures one from ``PERFMON_URL`` if set."""
    global _env_checked
    if _exporter is None and not _env_checked:
        with _lock:
            check, _env_checked = not _env_checked, True
        if check and os.environ.get(ENV_URL):
            try:
                configure()
            except Exception:
                log.warning("perfmon: could not configure the exporter from %s", ENV_URL,
                            exc_info=True)
    return _exporter


def session_started(session: Any) -> None:
    exporter = get_exporter()
    if exporter is not None:
        exporter.track(session)


def session_finished(session: Any) -> None:
    exporter = get_exporter()
    if exporter is not None:
        exporter.submit(session)


def flush(timeout: float = 5.0) -> bool:
    """Wait up to ``timeout`` seconds until every ended session has been sent (or spooled or
    dropped) and the spool has been resent as far as the server takes it. True when that
    finished in time, False on a timeout or while the server refuses the API key."""
    exporter = _exporter
    return True if exporter is None else exporter.flush(timeout)


def shutdown(timeout: float = 2.0) -> bool:
    """Flush within ``timeout``, spool what is left, and stop the exporter."""
    global _exporter
    with _lock:
        exporter, _exporter = _exporter, None
    return True if exporter is None else exporter.shutdown(timeout)


def stats() -> dict[str, int] | None:
    """What the exporter has sent, retried, spooled, resent, dropped, rejected and quarantined
    (payload counts since configure) and the spool problems it met (``spool_errors``), plus
    the current queue, spool and quarantine sizes; None if not exporting."""
    exporter = _exporter
    return None if exporter is None else exporter.stats()
