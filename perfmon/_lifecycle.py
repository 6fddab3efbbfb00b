"""Delivery from child processes: flush when a child ends, however it ends.

The exporter's ``atexit`` hook covers a process that exits normally. Children often do not:

* ``multiprocessing`` children started with fork or forkserver leave with ``os._exit()``
  after their target has run, so ``atexit`` never runs. ``multiprocessing`` does run its own
  finalizers there (``util._exit_function``, for fork, forkserver and spawn children), so
  a child registers ``util.Finalize(None, _exit_flush, exitpriority=EXIT_PRIORITY)``. The
  fork child clears that registry when it starts (``BaseProcess._after_fork``), so the
  finalizer is registered afterwards: from ``util.register_after_fork`` (which runs after
  the clearing) and lazily when a session starts or ends in the child.
* ``multiprocessing.Pool`` workers are killed with SIGTERM by ``Pool.terminate()``, which
  the pool's ``__exit__`` calls. In a pool worker whose SIGTERM is still the default, a
  handler flushes (within ``SIGTERM_FLUSH_S``) and then dies of SIGTERM as before.
* Celery's prefork children (billiard) leave with ``os._exit()`` too, for instance when
  ``worker_max_tasks_per_child`` recycles them; they send ``worker_process_shutdown`` first,
  and perfmon connects to it when celery is already imported.

Nothing here imports ``multiprocessing`` or ``celery``: each is used only if the program
has imported it already (``sys.modules``). Arming is done once per process (keyed by
pid) and costs a pid comparison afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import weakref
from typing import Any

log = logging.getLogger("perfmon")

#: ``multiprocessing`` runs finalizers with a priority >= 0 before it terminates and joins
#: the child's own daemonic children, higher priorities first (a Pool's own is 15).
EXIT_PRIORITY = 0
#: How long a pool worker told to stop (SIGTERM) spends flushing before it dies.
SIGTERM_FLUSH_S = 1.0
_SPOOL_MARGIN_S = 0.6  # the exporter's budget for spooling leftovers after a timed-out flush

_exporters: weakref.WeakSet[Any] = weakref.WeakSet()
_armed_pid = 0  # the process arm() last ran in
_celery_connected = False  # inherited across fork, like the connection itself
_flushing: tuple[int, threading.Thread] | None = None  # (pid, the exit flush of that process)
_sigterm_pending = False  # SIGTERM came during the exit flush: re-raised once it is done


def watch(exporter: Any) -> None:
    """Flush ``exporter`` when a child process ends; called when an exporter is created."""
    _exporters.add(exporter)
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        try:  # runs in fork children right after multiprocessing cleared its finalizers
            util.register_after_fork(exporter, _after_multiprocessing_fork)
        except Exception:
            log.debug("perfmon: could not register an after-fork hook", exc_info=True)
    arm()


def arm() -> None:
    """Make sure this process flushes at its end (once per process; cheap afterwards)."""
    global _armed_pid
    pid = os.getpid()
    if _armed_pid == pid:
        return
    _armed_pid = pid
    try:
        _arm_multiprocessing()
    except Exception:
        log.debug("perfmon: could not hook the multiprocessing exit", exc_info=True)
    try:
        _arm_celery()
    except Exception:
        log.debug("perfmon: could not hook celery's worker_process_shutdown", exc_info=True)


def _after_multiprocessing_fork(exporter: Any) -> None:
    arm()


def _arm_multiprocessing() -> None:
    mp = sys.modules.get("multiprocessing")
    util = sys.modules.get("multiprocessing.util")  # a child's bootstrap has loaded it
    if mp is None or util is None or mp.parent_process() is None:  # not a child
        return
    util.Finalize(None, _exit_flush, exitpriority=EXIT_PRIORITY)
    if _is_pool_worker(mp):
        _install_sigterm_handler()


def _is_pool_worker(mp: Any) -> bool:
    target = getattr(mp.current_process(), "_target", None)
    return (getattr(target, "__module__", None) == "multiprocessing.pool"
            and getattr(target, "__qualname__", None) == "worker")


def _install_sigterm_handler() -> None:
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return  # the program handles SIGTERM itself: leave it alone
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Flush for at most ``SIGTERM_FLUSH_S`` (plus the spooling margin), then die of SIGTERM.

    A pool sends its workers a sentinel and SIGTERM at about the same time, so the worker
    may already be ending, inside its exit flush: then that flush (bounded by
    ``exit_timeout``) is left to finish, and it re-raises SIGTERM when it is done."""
    global _sigterm_pending
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    if _flushing is not None and _flushing[0] == os.getpid():
        _sigterm_pending = True
        return
    try:
        _exit_flush(SIGTERM_FLUSH_S)
    finally:
        signal.raise_signal(signal.SIGTERM)
        os._exit(128 + signum)  # not reached: the default action ends the process


def _arm_celery() -> None:
    global _celery_connected
    signals = sys.modules.get("celery.signals")  # loaded with the Celery app class
    if _celery_connected or signals is None:
        return
    signals.worker_process_shutdown.connect(_on_worker_process_shutdown, weak=False,
                                            dispatch_uid="perfmon.flush")
    _celery_connected = True


def _on_worker_process_shutdown(*args: Any, **kwargs: Any) -> None:
    _exit_flush()


def _exit_flush(timeout: float | None = None) -> None:
    """Shut every live exporter down: deliver what is queued within its ``exit_timeout``
    (or ``timeout``, if shorter), spool the rest. Bounded; never raises.

    The work runs on a helper thread so that the caller (always the main thread: a
    finalizer, the SIGTERM handler, celery's shutdown signal) can bound its wait, even if the
    flush needs a lock the main thread held when a signal interrupted it."""
    global _flushing
    limit = max([e._exit_timeout for e in list(_exporters)] or [0.0])
    if timeout is not None:
        limit = min(limit, timeout)
    pid = os.getpid()
    claimed = _flushing
    if claimed is not None and claimed[0] == pid:  # called twice: wait for the first
        try:
            claimed[1].join(limit + _SPOOL_MARGIN_S)
        except RuntimeError:  # not started yet
            pass
        return
    helper = threading.Thread(target=_shutdown_all, args=(timeout,), name="perfmon-exit-flush",
                              daemon=True)
    _flushing = (pid, helper)  # from here on a SIGTERM lets this flush finish (see above)
    try:
        helper.start()
        helper.join(limit + _SPOOL_MARGIN_S)
    except Exception:
        log.debug("perfmon: could not run the exit flush", exc_info=True)
    if _sigterm_pending:
        signal.raise_signal(signal.SIGTERM)  # the handler is back to the default


def _shutdown_all(timeout: float | None) -> None:
    for exporter in list(_exporters):
        try:
            limit = exporter._exit_timeout
            exporter.shutdown(limit if timeout is None else min(limit, timeout))
        except Exception:
            log.debug("perfmon: exit flush failed in a child process", exc_info=True)
