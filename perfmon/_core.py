"""The hot path: operations, the context variable that nests them, and the decorators.

Everything a decorated call touches lives in this module so that the wrappers read plain
module globals (``_enabled``, ``_default``) and pre-bound functions. ``_monitor`` flips the
globals; ``_session`` owns the recorded lists.

A decorated call runs as an ``OperationMetrics`` (it is the current operation for anything
recorded inside it), but once it has finished and nothing else refers to that object, the
wrapper appends ``index, start_ns, end_ns, parent`` to the session's flat ``_records`` list
(``parent``: None at the top level, the list index of the parent, or, rarely, the parent
object itself) and puts the operation's name in its slot of the session's ``_ops`` list. So
a long session of 100,000 operations holds 100,000 names and ints, none of which the cyclic
garbage collector tracks, instead of 100,000 objects it walks on every full pass. The session
turns records back into ``OperationMetrics`` (once, keeping them) when the caller reads
``operations``; any entry of ``_ops`` that is not an ``OperationMetrics`` is a record.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from perfmon import _wire
from perfmon._wire import MAX_ERROR_CHARS, OPERATION_METADATA_BYTES, fit_metadata

F = TypeVar("F", bound=Callable[..., Any])

#: The innermost running operation of this context, or the session it runs in (a session's
#: ``_owner`` is itself, an operation's ``_owner`` is its session, so one ``get()`` yields both).
current: ContextVar[Any] = ContextVar("perfmon_current", default=None)

# Switched by the process-wide monitor (see _monitor). Module globals, because reading one is
# the cheapest check a wrapper can make before doing any work.
_enabled = True
# The session start_session() made the default, for code that runs outside any session context
# (the original API, and worker threads that were not handed a context).
_default: Any = None  # a perfmon._session.PerformanceMetrics

_now = time.perf_counter_ns  # monotonic, nanoseconds
_get = current.get
_set = current.set
_reset = current.reset
_new = object.__new__

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Anchor:
    """Maps the monotonic counter onto UTC wall time, read once at a known instant."""

    __slots__ = ("perf_ns", "wall_ns")

    def __init__(self) -> None:
        self.perf_ns = _now()
        self.wall_ns = time.time_ns()

    def to_datetime(self, ns: int) -> datetime:
        return _EPOCH + timedelta(microseconds=(self.wall_ns + ns - self.perf_ns) // 1000)

    def to_ns(self, when: datetime) -> int:
        """The counter value for a wall-clock instant (naive values are taken as local time)."""
        wall_ns = round(when.timestamp() * 1e9)
        return self.perf_ns + wall_ns - self.wall_ns


PROCESS_ANCHOR = Anchor()


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    message = f"{name}: {text}" if text else name
    return message[:MAX_ERROR_CHARS]


class _Extra:
    """The rarely used parts of an operation, allocated only when one is needed."""

    __slots__ = ("meta", "err", "hits", "misses", "token")

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.meta = meta
        self.err: str | None = None  # None: success; "" failed without a message
        self.hits = 0
        self.misses = 0
        self.token: Any = None  # context token of start_operation(), until end_operation()


class OperationMetrics:
    """One timed piece of work.

    Created by the decorators, by ``with monitor.operation(...)`` or by
    ``monitor.start_operation()``. It stores two ``perf_counter_ns`` integers and three
    references; datetimes and seconds are derived on access, so a recorded operation costs
    well under 200 bytes. Metadata, errors and cache counts live in a side object that only
    the operations which have them allocate.
    """

    __slots__ = (
        "operation_name",
        "start_ns",
        "end_ns",
        "_parent",  # enclosing operation, or the session for a top-level operation
        "_owner",  # the session this operation is recorded in, or None
        "_extra",  # None, or an _Extra
        "_index",  # position in its session's list, or None (see _core's docstring)
    )

    def __init__(
        self,
        operation_name: str,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        duration_seconds: float | None = None,
        success: bool = True,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.operation_name = operation_name
        self._parent = self._owner = self._extra = self._index = None
        if metadata:
            self._extra = _Extra(dict(metadata))
        if error is not None or not success:
            _extra_of(self).err = _error_value(success, error)
        if start_time is None:
            self.start_ns = _now()
        else:
            self.start_ns = PROCESS_ANCHOR.to_ns(start_time)
        if end_time is not None:
            self.end_ns: int | None = PROCESS_ANCHOR.to_ns(end_time)
        elif duration_seconds is not None:
            self.end_ns = self.start_ns + round(duration_seconds * 1e9)
        else:
            self.end_ns = None

    # -- the original dataclass fields, derived ---------------------------------------------

    @property
    def name(self) -> str:
        """The operation's name (the original attribute is ``operation_name``)."""
        return self.operation_name

    @property
    def metadata(self) -> dict[str, Any]:
        """Free-form details; created on first access so that most operations carry none."""
        extra = _extra_of(self)
        if extra.meta is None:
            extra.meta = {}
        return extra.meta

    @property
    def start_time(self) -> datetime:
        """When the operation started (timezone-aware UTC)."""
        return self._anchor().to_datetime(self.start_ns)

    @property
    def end_time(self) -> datetime | None:
        """When it ended (timezone-aware UTC); None while it runs."""
        return None if self.end_ns is None else self._anchor().to_datetime(self.end_ns)

    @property
    def duration_ns(self) -> int | None:
        """Duration from the monotonic clock in nanoseconds; None while it runs."""
        return None if self.end_ns is None else self.end_ns - self.start_ns

    @property
    def duration_seconds(self) -> float | None:
        """Duration in seconds; None while it runs."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    @property
    def success(self) -> bool:
        """False once a failure was recorded."""
        return self._extra is None or self._extra.err is None

    @property
    def error(self) -> str | None:
        """The recorded error message, if any."""
        return None if self._extra is None else (self._extra.err or None)

    @property
    def parent(self) -> OperationMetrics | None:
        """The enclosing operation in the same session, or None for a top-level one."""
        parent = self._parent
        return parent if isinstance(parent, OperationMetrics) else None

    @property
    def cache_hits(self) -> int:
        """Cache hits recorded while this operation was current."""
        return 0 if self._extra is None else self._extra.hits

    @property
    def cache_misses(self) -> int:
        """Cache misses recorded while this operation was current."""
        return 0 if self._extra is None else self._extra.misses

    @property
    def finished(self) -> bool:
        """True once the operation has ended."""
        return self.end_ns is not None

    @classmethod
    def from_dict(cls, wire: dict[str, Any], anchor: Anchor | None = None) -> OperationMetrics:
        """An operation rebuilt from its schema-v1 form (``to_dict()``), on ``anchor``'s clock
        (default: the process's). Its session and parent are joined by ``_attach``."""
        anchor = anchor or PROCESS_ANCHOR
        success = wire.get("success") is not False
        op = cls(wire["name"], success=success, error=wire.get("error"),
                 metadata=wire.get("metadata") or None)
        op.start_ns = anchor.to_ns(datetime.fromisoformat(wire["started_at"]))
        duration = wire.get("duration_s")
        op.end_ns = None if duration is None else op.start_ns + round(duration * 1e9)
        hits, misses = wire.get("cache_hits") or 0, wire.get("cache_misses") or 0
        if hits or misses:
            extra = _extra_of(op)
            extra.hits, extra.misses = hits, misses
        return op

    def _attach(self, session: Any, parent: OperationMetrics | None) -> None:
        """Join ``session``, under ``parent`` (None: a top-level operation)."""
        self._owner = session
        self._parent = session if parent is None else parent

    def _anchor(self) -> Anchor:
        owner = self._owner
        return PROCESS_ANCHOR if owner is None else owner._anchor

    def finish(self, success: bool = True, error: str | None = None) -> None:
        """Stop the clock (once) and record the outcome."""
        # Outcome before end time: a concurrent snapshot that sees the end sees the outcome too.
        if error is not None or not success:
            _extra_of(self).err = _error_value(success, error)
        elif self._extra is not None:
            self._extra.err = None
        if self.end_ns is None:
            self.end_ns = _now()

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The schema-v1 form of this operation (``id``/``parent_id`` when in a session)."""
        owner = self._owner
        ids = owner._operation_ids() if owner is not None else {}
        return self._wire(ids, self._anchor())

    def _wire(self, ids: dict[int, str], anchor: Anchor) -> dict[str, Any]:
        end_ns = self.end_ns
        extra = self._extra
        err = None if extra is None else extra.err
        return {
            "id": ids.get(id(self)),
            "parent_id": ids.get(id(self._parent)),
            "name": _wire.name(self.operation_name),
            "started_at": anchor.to_datetime(self.start_ns).isoformat(),
            "ended_at": None if end_ns is None else anchor.to_datetime(end_ns).isoformat(),
            "duration_s": None if end_ns is None else (end_ns - self.start_ns) / 1e9,
            "success": None if end_ns is None else err is None,  # unknown while running
            "error": err or None,
            "metadata": _bounded(extra.meta) if extra is not None and extra.meta else {},
            "cache_hits": 0 if extra is None else extra.hits,
            "cache_misses": 0 if extra is None else extra.misses,
        }

    def __repr__(self) -> str:
        duration = self.duration_seconds
        shown = "running" if duration is None else f"{duration:.6f}s"
        return f"<OperationMetrics {self.operation_name!r} {shown} success={self.success}>"


def record_map(records: list[Any]) -> dict[int, tuple[int, int, Any]]:
    """``index -> (start_ns, end_ns, parent)`` from a session's ``_records`` (see the module
    docstring); pass a copy, taken in one call."""
    it = iter(records)
    return {index: (start_ns, end_ns, parent)
            for index, start_ns, end_ns, parent in zip(it, it, it, it, strict=True)}


def from_record(name: str, record: tuple[int, int, Any], session: Any, built: list[Any],
                index: int) -> OperationMetrics:
    """The ``OperationMetrics`` a finished decorated call left as a record. ``built``: the
    session's operations up to ``index``, already objects."""
    start_ns, end_ns, parent = record
    op = _new(OperationMetrics)
    op.operation_name = name
    op.start_ns = start_ns
    op.end_ns = end_ns
    op._owner = session
    op._extra = None
    op._index = index
    if parent is None:
        op._parent = session
    elif type(parent) is int:
        op._parent = built[parent]
    else:
        op._parent = parent
    return op


def record_wire(name: str, record: tuple[int, int, Any], index: int, ids: dict[int, str],
                anchor: Anchor) -> dict[str, Any]:
    """``OperationMetrics._wire`` of the operation a record stands for."""
    start_ns, end_ns, parent = record
    if parent is None:
        parent_id = None
    elif type(parent) is int:
        parent_id = f"o{parent + 1}"
    else:
        parent_id = ids.get(id(parent))
    return {
        "id": f"o{index + 1}",
        "parent_id": parent_id,
        "name": _wire.name(name),
        "started_at": anchor.to_datetime(start_ns).isoformat(),
        "ended_at": anchor.to_datetime(end_ns).isoformat(),
        "duration_s": (end_ns - start_ns) / 1e9,
        "success": True,
        "error": None,
        "metadata": {},
        "cache_hits": 0,
        "cache_misses": 0,
    }


def _bounded(meta: dict[Any, Any]) -> dict[str, Any]:
    return fit_metadata(meta, OPERATION_METADATA_BYTES)


def _extra_of(op: OperationMetrics) -> _Extra:
    """The operation's side object, created under its session's lock (another thread may be
    counting a cache hit on it at the same moment)."""
    extra = op._extra
    if extra is None:
        owner = op._owner
        if owner is None:
            extra = op._extra = _Extra()
        else:
            with owner._lock:
                extra = op._extra
                if extra is None:
                    extra = op._extra = _Extra()
    return extra


def _error_value(success: bool, error: str | None) -> str | None:
    if error is not None:
        return str(error)[:MAX_ERROR_CHARS]
    return None if success else ""


def register(op: OperationMetrics) -> Any:
    """Join the current session (if any) as a child of the current operation and make ``op``
    current. Returns the context token to reset, or None when there is no session."""
    cur = _get()
    if cur is None:
        cur = _default
        if cur is None:
            return None
    session = cur._owner
    op._parent = cur
    op._owner = session
    ops = session._ops
    index = len(ops)
    ops.append(op)
    op._index = index if ops[index] is op else _find(ops, op)
    return _set(op)


def _find(ops: list[Any], op: OperationMetrics) -> int:
    """Where ``op`` sits in ``ops``, looking from the end: another thread appended between
    our ``len()`` and our append, so it is near the end."""
    index = len(ops) - 1
    while ops[index] is not op:
        index -= 1
    return index


def unregister(token: Any) -> None:
    try:
        _reset(token)
    except (ValueError, RuntimeError):  # exited in another context, or twice
        pass


class OperationScope:
    """``with monitor.operation(name) as op:`` (or ``async with``)."""

    __slots__ = ("op", "_token")

    def __enter__(self) -> OperationMetrics:
        op = self.op
        if _enabled:
            self._token = register(op)
        op.start_ns = _now()
        return op

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        op = self.op
        if exc is not None:
            _extra_of(op).err = describe_error(exc)
        op.end_ns = _now()
        token = self._token
        if token is not None:
            self._token = None
            unregister(token)

    async def __aenter__(self) -> OperationMetrics:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


class _NoopOperation:
    """What ``monitor.operation()`` hands out while monitoring is disabled."""

    __slots__ = ()
    operation_name = ""
    success = True
    error = None
    duration_seconds = None

    @property
    def metadata(self) -> dict[str, Any]:
        return {}  # a fresh throwaway dict: writes must not leak between callers

    def finish(self, success: bool = True, error: str | None = None) -> None:
        return None

    def __enter__(self) -> _NoopOperation:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    async def __aenter__(self) -> _NoopOperation:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        return None


NOOP_OPERATION = _NoopOperation()


def new_operation(name: str, metadata: dict[str, Any] | None) -> OperationMetrics:
    """A fresh operation that has not started yet."""
    op = _new(OperationMetrics)
    op.operation_name = name
    op._parent = op._owner = op.end_ns = op._index = None
    op._extra = _Extra(metadata) if metadata else None
    op.start_ns = _now()  # until it is entered
    return op


def operation_scope(name: str, metadata: dict[str, Any] | None) -> OperationScope | Any:
    """The body of ``monitor.operation()``."""
    if not _enabled:
        return NOOP_OPERATION
    scope = _new(OperationScope)
    scope.op = new_operation(name, metadata)
    scope._token = None
    return scope


def _no_refcount(obj: object) -> int:
    return -1


_refcount = getattr(sys, "getrefcount", _no_refcount)


def _sole_refcount() -> int | None:
    """What ``sys.getrefcount`` says for an operation that only a local variable holds, read
    the way the wrappers read it. None (never replace an operation by a record) where the
    interpreter has no reference counts."""
    if _refcount is _no_refcount:
        return None
    op = _new(OperationMetrics)
    ops = [op]
    ops[0] = None
    return _refcount(op)


_SOLE = _sole_refcount()


# -- decorators ----------------------------------------------------------------------------
#
# The two wrappers below are the code the benchmark measures. They repeat the same lines
# instead of sharing a helper because a Python call costs as much as the rest of the
# bookkeeping put together.


def _sync_wrapper(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    # One spare operation object per decorated function: one that was replaced by a record
    # and that nothing else can reach (its end_ns and _extra are None). Reusing it saves an
    # allocation and a deallocation per call.
    spare: dict[int, OperationMetrics] = {}
    take = spare.pop

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _enabled:
            return func(*args, **kwargs)
        cur = _get()
        if cur is None:
            cur = _default
            if cur is None:  # no session anywhere: nothing to record into
                return func(*args, **kwargs)
        session = cur._owner
        ops = session._ops
        op = take(0, None)  # atomic: two threads never get the same spare
        if op is None:
            op = _new(OperationMetrics)
            op.operation_name = name
            op._extra = op.end_ns = None
        op._parent = cur
        op._owner = session
        index = len(ops)
        ops.append(op)  # list.append is atomic: no lock (see PerformanceMetrics)
        if ops[index] is not op:  # another thread appended in between
            index = _find(ops, op)
        op._index = index
        token = _set(op)
        op.start_ns = start = _now()
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            _extra_of(op).err = describe_error(exc)
            raise
        finally:
            end = _now()
            _reset(token)
            # Leave a plain record in the object's place (see the module docstring) when
            # nothing was recorded on it and nothing else holds it. Only this wrapper ever
            # replaces ops[index] while it holds an object.
            if op._extra is None:
                if cur is session:
                    parent = None
                else:
                    parent = cur._index
                    if parent is None:
                        parent = cur
                session._records.extend((index, start, end, parent))  # atomic, as append
                ops[index] = name
                # Counted after the swap, so a reader that took the object just before the
                # swap is seen here, and the object goes back.
                if _refcount(op) != _SOLE:
                    op.end_ns = end
                    if ops[index] is name:
                        ops[index] = op
                else:  # nobody can reach it: the next call may reuse it
                    op._parent = op._owner = None
                    spare[0] = op
            else:
                op.end_ns = end

    return wrapper


def _async_wrapper(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    spare: dict[int, OperationMetrics] = {}  # as in _sync_wrapper
    take = spare.pop

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _enabled:
            return await func(*args, **kwargs)
        cur = _get()
        if cur is None:
            cur = _default
            if cur is None:
                return await func(*args, **kwargs)
        session = cur._owner
        ops = session._ops
        op = take(0, None)  # atomic: two threads never get the same spare
        if op is None:
            op = _new(OperationMetrics)
            op.operation_name = name
            op._extra = op.end_ns = None
        op._parent = cur
        op._owner = session
        index = len(ops)
        ops.append(op)
        if ops[index] is not op:
            index = _find(ops, op)
        op._index = index
        # A coroutine always resumes in the task that started it, so the token stays valid.
        token = _set(op)
        op.start_ns = start = _now()
        try:
            return await func(*args, **kwargs)
        except BaseException as exc:
            _extra_of(op).err = describe_error(exc)
            raise
        finally:
            end = _now()
            _reset(token)
            # As in _sync_wrapper. Tasks started inside hold the operation in their context,
            # so while any of them lives the object stays.
            if op._extra is None:
                if cur is session:
                    parent = None
                else:
                    parent = cur._index
                    if parent is None:
                        parent = cur
                session._records.extend((index, start, end, parent))  # atomic, as append
                ops[index] = name
                if _refcount(op) != _SOLE:
                    op.end_ns = end
                    if ops[index] is name:
                        ops[index] = op
                else:  # nobody can reach it: the next call may reuse it
                    op._parent = op._owner = None
                    spare[0] = op
            else:
                op.end_ns = end

    return wrapper


class _CheckSession:
    """Just enough of a session for ``_check_records`` to record into."""

    __slots__ = ("_owner", "_ops", "_records", "_lock")

    def __init__(self) -> None:
        self._owner = self
        self._ops: list[Any] = []
        self._records: list[Any] = []


def _check_records() -> bool:
    """Whether this interpreter's reference counts say what the wrappers expect: a plain call
    leaves a record, a call whose operation something else holds leaves the object. Run once
    at import; where it fails, operations always stay objects."""
    held: list[Any] = []

    def plain() -> None:
        return None

    def holding() -> None:
        held.append(_get())

    async def aplain() -> None:
        return None

    async def aholding() -> None:
        held.append(_get())

    session = _CheckSession()
    token = _set(session)
    try:
        _sync_wrapper(plain, "check")()
        _sync_wrapper(holding, "check")()
        for func in (aplain, aholding):
            coro = _async_wrapper(func, "check")()
            try:
                coro.send(None)
            except StopIteration:
                pass
    finally:
        _reset(token)
    ops = session._ops
    return (len(ops) == 4 and ops[0] == "check" and ops[1] is held[0]
            and ops[2] == "check" and ops[3] is held[1])


def _decorate(func: Callable[..., Any], name: str | None) -> Callable[..., Any]:
    op_name = name or getattr(func, "__name__", None) or repr(func)
    if inspect.iscoroutinefunction(func):
        return _async_wrapper(func, op_name)
    return _sync_wrapper(func, op_name)


@overload
def monitor_performance(operation_name: F, /) -> F: ...
@overload
def monitor_performance(operation_name: str | None = None, /) -> Callable[[F], F]: ...


def monitor_performance(operation_name: Any = None, /) -> Any:
    """Time every call of the decorated function as an operation of the current session.

    Works bare (``@monitor_performance``, named after the function) or named
    (``@monitor_performance("scene_generation")``). Exceptions are recorded on the operation
    and re-raised. A coroutine function gets the async wrapper automatically. Calls made
    outside any session, or while monitoring is disabled, run unrecorded.
    """
    if callable(operation_name):
        return _decorate(operation_name, None)

    def decorator(func: F) -> F:
        return _decorate(func, operation_name)  # type: ignore[return-value]

    return decorator


@overload
def monitor_async_performance(operation_name: F, /) -> F: ...
@overload
def monitor_async_performance(operation_name: str | None = None, /) -> Callable[[F], F]: ...


def monitor_async_performance(operation_name: Any = None, /) -> Any:
    """The original async decorator; the same as :func:`monitor_performance`, which already
    picks the async wrapper for coroutine functions."""
    return monitor_performance(operation_name)


if not _check_records():
    _SOLE = None
