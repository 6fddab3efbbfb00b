"""A session's payload written straight into gzip request bodies, part by part.

``to_dict()`` builds one dict per operation, and JSON of the whole would then be built (and,
for a payload too large for one request, built again at every halving). Here each operation
is written as its JSON text, a few hundred at a time, into the gzip stream of the request it
goes in; a request is full when the next operations would take it past ``max_bytes`` of JSON
(or past the server's per-request counts), and the next one begins. The payloads are the
ones ``to_dict()`` describes, as the exporter sent them before (a test compares the two):

* the same fields and values, fitted the same way (``perfmon._wire``), with values the
  encoder cannot take replaced as ``perfmon._http.dumps`` replaces them;
* a payload that fits one request is sent whole, without ``session.part``; otherwise every
  part carries the same ``session`` object (the same sequence and SDK report) with ``part``
  saying which of how many it is, operations in start order (parents first), then the calls.

One difference in form: the ``session`` object comes last in each body, after the
operations and calls, because its SDK report counts the values fitted in all of them.
JSON objects are unordered; the server reads the body whole.
"""

from __future__ import annotations

import json
import zlib
from array import array
from collections.abc import Callable
from datetime import timedelta
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from perfmon import _wire
from perfmon._core import _EPOCH, OperationMetrics, _bounded
from perfmon._http import _finite, dumps, safe_text
from perfmon._wire import MAX_API_CALLS, MAX_OPERATIONS, SCHEMA_VERSION

BATCH = 256  # items written to a gzip stream at once
GZIP_LEVEL = 6
# Room kept in each request for the session's SDK report and part header, which are known
# only once every part is written (the report counts the values fitted in all of them).
HEADER_ROOM = 2048

_encode_meta = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=safe_text, allow_nan=False
).encode


def _meta_json(meta: dict[str, Any]) -> str:
    try:
        return _encode_meta(meta)
    except ValueError:  # as perfmon._http.dumps: one value replaced, never the payload
        return _encode_meta(_finite(meta))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="replace")  # a lone surrogate becomes "?"


class _Iso:
    """``Anchor.to_datetime(ns).isoformat()``, the date and time formatted once a second."""

    __slots__ = ("offset_ns", "second", "prefix")

    def __init__(self, anchor: Any) -> None:
        self.offset_ns = anchor.wall_ns - anchor.perf_ns
        self.second: int | None = None
        self.prefix = ""

    def __call__(self, ns: int) -> str:
        second, micro = divmod((self.offset_ns + ns) // 1000, 1_000_000)
        if second != self.second:
            self.prefix = (_EPOCH + timedelta(seconds=second)).isoformat()[:-6]
            self.second = second
        if micro:
            return f"{self.prefix}.{micro:06d}+00:00"
        return f"{self.prefix}+00:00"


class _Part:
    __slots__ = ("gz", "out", "size", "ops", "calls", "section", "empty")

    def __init__(self, prefix: bytes) -> None:
        self.gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # gzip, mtime 0
        self.out = [self.gz.compress(prefix)]
        self.size = len(prefix)
        self.ops = self.calls = 0
        self.section = "operations"
        self.empty = True  # nothing yet in the current section


_OPS_OPEN = b'{"schema_version":%d,"operations":[' % SCHEMA_VERSION
_CALLS_OPEN = b'],"api_calls":['
_SESSION_OPEN = b'],"session":'


class _Packer:
    """Items packed into parts of at most ``limit`` bytes of JSON and the per-request
    counts; an item too large on its own goes alone."""

    def __init__(self, limit: int, header_bytes: int) -> None:
        self.limit = limit
        self.header_bytes = header_bytes + HEADER_ROOM
        self.parts: list[_Part] = []
        self.section = "operations"
        self.part = self._new_part()

    def _new_part(self) -> _Part:
        part = _Part(_OPS_OPEN)
        part.size += len(_CALLS_OPEN) + len(_SESSION_OPEN) + 1 + self.header_bytes
        if self.section == "api_calls":
            self._open_calls(part)
        self.parts.append(part)
        return part

    @staticmethod
    def _open_calls(part: _Part) -> None:
        part.out.append(part.gz.compress(_CALLS_OPEN))
        part.section = "api_calls"
        part.empty = True

    def start_calls(self) -> None:
        self.section = "api_calls"
        self._open_calls(self.part)

    def _room(self, part: _Part, items: int) -> bool:
        if self.section == "operations":
            return part.ops + items <= MAX_OPERATIONS
        return part.calls + items <= MAX_API_CALLS

    def _write(self, part: _Part, data: bytes, items: int) -> None:
        if not part.empty:
            data = b"," + data
        part.out.append(part.gz.compress(data))
        part.size += len(data)
        part.empty = False
        if self.section == "operations":
            part.ops += items
        else:
            part.calls += items

    def add(self, fragments: list[str]) -> None:
        """A batch of items' JSON, in order."""
        if not fragments:
            return
        data = _utf8(",".join(fragments))
        part = self.part
        if self._room(part, len(fragments)) and (
                part.size + len(data) + (not part.empty) <= self.limit):
            self._write(part, data, len(fragments))
            return
        for fragment in fragments:  # the batch straddles two parts: item by item
            data = _utf8(fragment)
            part = self.part
            has_items = part.ops + part.calls > 0
            if has_items and not (self._room(part, 1) and
                                  part.size + len(data) + (not part.empty) <= self.limit):
                part = self.part = self._new_part()
            self._write(part, data, 1)

    def bodies(self, header: dict[str, Any]) -> list[bytes]:
        """The gzip bodies, each ending with ``header`` (and its part, when split)."""
        count = len(self.parts)
        bodies = []
        for index, part in enumerate(self.parts, 1):
            if part.section == "operations":
                part.out.append(part.gz.compress(_CALLS_OPEN))
            session = header if count == 1 else {
                **header, "part": {"index": index, "count": count}}
            part.out.append(part.gz.compress(_SESSION_OPEN + dumps(session) + b"}"))
            part.out.append(part.gz.flush())
            bodies.append(b"".join(part.out))
            part.out = []
        return bodies


class _Ids:
    """``o<n>`` of an operation object at position n of ``ops`` (as to_dict's ``ids``):
    read from the object's own index when that is where it sits, else from a map of every
    object in ``ops``, built only when first needed."""

    __slots__ = ("session", "ops", "_map")

    def __init__(self, session: Any, ops: list[Any]) -> None:
        self.session = session
        self.ops = ops
        self._map: dict[int, str] | None = None

    def of(self, obj: Any) -> str | None:
        if type(obj) is OperationMetrics:
            if obj._owner is self.session:
                index = obj._index
                if index is not None and index < len(self.ops) and self.ops[index] is obj:
                    return f"o{index + 1}"
        elif not isinstance(obj, OperationMetrics):
            return None  # the session, or nothing: not an operation of this payload
        if self._map is None:
            self._map = {id(op): f"o{i}" for i, op in enumerate(self.ops, 1)
                         if isinstance(op, OperationMetrics)}
        return self._map.get(id(obj))


def encode(session: Any, max_bytes: int,
           report: Callable[[Any], dict[str, Any] | None]) -> list[bytes]:
    """``session``'s payload as gzip request bodies (see the module docstring).
    ``report(session)``, called once everything else is written, is ``session.sdk`` (None to
    leave it out); ``session.fitted_in_payload`` is set first, as ``to_dict()`` sets it."""
    fits_before = _wire.fits()
    header, ops, flat_records, calls = session._wire_snapshot()
    packer = _Packer(max_bytes, len(dumps(header)))
    iso = _Iso(session._anchor)
    ids = _Ids(session, ops)
    _write_operations(packer, ops, flat_records, ids, iso)
    packer.start_calls()
    _write_calls(packer, calls, ids, session._anchor)
    del ops, flat_records, calls
    session.fitted_in_payload = _wire.fits() - fits_before + session._fitted_on_record
    sdk = report(session)
    if sdk is not None:
        header["sdk"] = sdk
    return packer.bodies(header)


def _write_operations(packer: _Packer, ops: list[Any], flat_records: list[Any], ids: _Ids,
                      iso: _Iso) -> None:
    # Where each record sits in flat_records (index, start_ns, end_ns, parent), by its index.
    # (It may also hold records of operations that started after ``ops`` was read.)
    count = len(ops)
    where = array("q", bytes(8 * count))
    for at in range(0, len(flat_records), 4):
        index = flat_records[at]
        if index < count:
            where[index] = at
    names: dict[str, str] = {}  # name -> its JSON, for names that needed no fitting
    fits = _wire.fits

    def name_json(value: Any) -> str:
        if type(value) is str:
            cached = names.get(value)
            if cached is not None:
                return cached
        before = fits()
        text = encode_basestring(_wire.name(value))
        if type(value) is str and fits() == before:
            names[value] = text
        return text

    batch: list[str] = []
    add = batch.append
    for i, op in enumerate(ops):
        if type(op) is OperationMetrics or isinstance(op, OperationMetrics):
            add(_operation_json(op, i, ids, iso, name_json))
        else:  # a record: see perfmon._core.record_wire
            at = where[i]
            start_ns, end_ns, parent = (flat_records[at + 1], flat_records[at + 2],
                                        flat_records[at + 3])
            if parent is None:
                parent_id = "null"
            elif type(parent) is int:
                parent_id = f'"o{parent + 1}"'
            else:
                found = ids.of(parent)
                parent_id = "null" if found is None else encode_basestring(found)
            add(f'{{"id":"o{i + 1}","parent_id":{parent_id},"name":{name_json(op)},'
                f'"started_at":"{iso(start_ns)}","ended_at":"{iso(end_ns)}",'
                f'"duration_s":{(end_ns - start_ns) / 1e9!r},"success":true,"error":null,'
                f'"metadata":{{}},"cache_hits":0,"cache_misses":0}}')
        if len(batch) >= BATCH:
            packer.add(batch)
            batch.clear()
    packer.add(batch)


def _operation_json(op: OperationMetrics, i: int, ids: _Ids, iso: _Iso,
                    name_json: Callable[[Any], str]) -> str:
    """``OperationMetrics._wire`` as JSON text."""
    end_ns = op.end_ns
    extra = op._extra
    err = None if extra is None else extra.err
    own = ids.of(op)
    parent = ids.of(op._parent)
    if end_ns is None:
        ended = duration = success = "null"
    else:
        ended = f'"{iso(end_ns)}"'
        duration = repr((end_ns - op.start_ns) / 1e9)
        success = "true" if err is None else "false"
    if extra is None:
        meta, hits, misses = "{}", 0, 0
    else:
        meta = _meta_json(_bounded(extra.meta)) if extra.meta else "{}"
        hits, misses = extra.hits, extra.misses
    return (f'{{"id":{"null" if own is None else encode_basestring(own)},'
            f'"parent_id":{"null" if parent is None else encode_basestring(parent)},'
            f'"name":{name_json(op.operation_name)},"started_at":"{iso(op.start_ns)}",'
            f'"ended_at":{ended},"duration_s":{duration},"success":{success},'
            f'"error":{encode_basestring(err) if err else "null"},"metadata":{meta},'
            f'"cache_hits":{_int_json(hits)},"cache_misses":{_int_json(misses)}}}')


def _int_json(value: Any) -> str:
    return str(value) if type(value) is int else _meta_json(value)


def _write_calls(packer: _Packer, calls: list[Any], ids: _Ids, anchor: Any) -> None:
    referenced = {id(call._op): ids.of(call._op) for call in calls if call._op is not None}
    for start in range(0, len(calls), BATCH):
        wires = [call._wire(number, referenced, anchor)
                 for number, call in enumerate(calls[start:start + BATCH], start + 1)]
        packer.add([_meta_json(wire) for wire in wires])
