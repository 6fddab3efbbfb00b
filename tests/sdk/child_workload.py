"""What the child processes of tests/sdk/test_child_processes.py run.

A module of its own (no pytest, no Django) so that spawn and forkserver children, which
import their target by name, load little. None of these functions calls ``perfmon.flush()``.
"""

from __future__ import annotations

import signal

import perfmon

monitor = perfmon.get_performance_monitor()


def make_session(session_id: str) -> str:
    """One session of two operations and an API call; ends and returns, never flushes."""
    with monitor.session(session_id, episode="ep001", workflow="child_process"):
        with monitor.operation("outline"):
            monitor.record_api_call(tokens_used=10, model="gpt-4o-mini")
        with monitor.operation("scene", index=1):
            monitor.increment("scenes_generated")
    return session_id


def configure_worker(url: str, api_key: str, spool_dir: str) -> None:
    """A Pool initializer for spawn and forkserver workers (configuration in code)."""
    perfmon.configure(url=url, api_key=api_key, spool_dir=spool_dir)


def _own_sigterm_handler(signum: int, frame: object) -> None:
    raise SystemExit(0)


def install_own_sigterm_handler() -> None:
    """A Pool initializer standing for a program that handles SIGTERM itself."""
    signal.signal(signal.SIGTERM, _own_sigterm_handler)


def sigterm_handler_after_session(session_id: str) -> str:
    """Make a session, then say who handles SIGTERM in this worker now."""
    make_session(session_id)
    handler = signal.getsignal(signal.SIGTERM)
    return f"{getattr(handler, '__module__', '')}.{getattr(handler, '__qualname__', handler)}"
