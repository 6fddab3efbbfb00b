"""Bulk upserts of a session's operations and API calls.

The ORM's per-row model objects are the known cost of ingest, so rows go to the database
as plain tuples: on PostgreSQL through COPY (straight into the table for a session created
in this transaction, through a temporary staging table when merging), elsewhere through
one executemany. Both end in the same ``INSERT … ON CONFLICT … DO UPDATE`` rules, so a
resent row changes nothing and a finished operation never goes back to running.

Operation row ids are chosen before the rows are written, so parent and operation links
go in with the rows instead of costing a second write of every row.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ingest.schemas import ApiCallIn, OperationIn
from metrics.models import ApiCall, Operation

JSONB_OID = 3802  # fixed in PostgreSQL's catalogue (pg_type.dat)
IN_CHUNK = 5000  # ids per IN (...) list: under SQLite's variable limit


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    conflict_update: str  # the ON CONFLICT clause, in SQL both backends accept
    # PostgreSQL types of the columns, in order, to COPY in binary (the server then parses
    # no text: times, numbers); None: COPY as text.
    binary_types: tuple[str, ...] | None = None

    @property
    def column_list(self) -> str:
        return ", ".join(self.columns)


CONFLICT_KEY = ("session_id", "client_id")


# Null-safe "differs": PostgreSQL's spelling, and SQLite's (which has IS DISTINCT FROM
# only from 3.39 on).
_DIFFERS = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"


def _upsert_clause(table: str, columns: tuple[str, ...], *, rules: dict[str, str],
                   where: str = "") -> str:
    """ON CONFLICT on the wire id: the newest value of every column, unless ``rules``
    says otherwise for it. The row id and the conflict key never change.

    A row that would stay as it is is not written at all: a running session's snapshots
    resend every finished row, and rewriting one costs a new row version and an entry in
    each of its indexes, for nothing."""
    kept = {"id", *CONFLICT_KEY}
    updated = {column: rules.get(column, f"excluded.{column}")
               for column in columns if column not in kept}
    assignments = ", ".join(f"{column} = {value}" for column, value in updated.items())
    changes = " OR ".join(f"{table}.{column} {_DIFFERS} {value}"
                          for column, value in updated.items())
    condition = f"({where}) AND ({changes})" if where else changes
    return (f"ON CONFLICT ({', '.join(CONFLICT_KEY)}) DO UPDATE SET {assignments} "
            f"WHERE {condition}")


_OPS = Operation._meta.db_table
_OPS_COLUMNS = (
    "id", "session_id", "client_id", "parent_client_id", "parent_id", "name", "started_at",
    "ended_at", "duration_s", "success", "error", "metadata", "cache_hits", "cache_misses",
)
_OPS_TYPES = (
    "int8", "int8", "varchar", "varchar", "int8", "varchar", "timestamptz",
    "timestamptz", "float8", "bool", "text", "jsonb", "int4", "int4",
)
OPERATIONS = Table(
    name=_OPS,
    columns=_OPS_COLUMNS,
    conflict_update=_upsert_clause(
        _OPS, _OPS_COLUMNS,
        rules={"parent_id": f"COALESCE(excluded.parent_id, {_OPS}.parent_id)"},
        # a finished operation never goes back to running
        where=f"{_OPS}.ended_at IS NULL OR excluded.ended_at IS NOT NULL",
    ),
    binary_types=_OPS_TYPES,
)

# For a snapshot older than what is stored (ingest.merge_order): its new operations are
# added, and a stored running operation takes its values only if it shows it finished.
OPERATIONS_FROM_STALE = Table(
    name=_OPS,
    columns=_OPS_COLUMNS,
    conflict_update=_upsert_clause(
        _OPS, _OPS_COLUMNS,
        rules={"parent_id": f"COALESCE(excluded.parent_id, {_OPS}.parent_id)"},
        where=f"{_OPS}.ended_at IS NULL AND excluded.ended_at IS NOT NULL",
    ),
    binary_types=_OPS_TYPES,
)

_CALLS = ApiCall._meta.db_table
_CALLS_COLUMNS = (
    "session_id", "client_id", "operation_client_id", "operation_id", "provider", "model",
    "at", "latency_s", "prompt_tokens", "completion_tokens", "cached_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "total_tokens",
    "cost_usd", "cost_source", "prompt_hash", "error", "error_message", "streamed",
    "time_to_first_token_s", "attempts",
)
_CLIENT_PRICED = "excluded.cost_source = 'client'"
API_CALLS = Table(
    name=_CALLS,
    columns=_CALLS_COLUMNS,
    conflict_update=_upsert_clause(
        _CALLS, _CALLS_COLUMNS,
        rules={
            "operation_id": f"COALESCE(excluded.operation_id, {_CALLS}.operation_id)",
            # A cost the server computed is kept when the same call is resent without one.
            "cost_usd": f"CASE WHEN {_CLIENT_PRICED} THEN excluded.cost_usd "
                        f"ELSE {_CALLS}.cost_usd END",
            "cost_source": f"CASE WHEN {_CLIENT_PRICED} THEN excluded.cost_source "
                           f"ELSE {_CALLS}.cost_source END",
        },
    ),
)


def operation_ids(
    session_pk: int,
    operations: Sequence[OperationIn],
    calls: Sequence[ApiCallIn],
    *,
    fresh: bool,
) -> tuple[dict[str, int], int]:
    """Row ids by client id for the payload's operations and the ones it refers to, and
    how many of the payload's operations are new to the session.

    Rows that exist keep their ids; new ones get ids drawn now. The caller holds the
    session's row lock, so no other request adds operations to this session meanwhile.
    """
    existing: dict[str, int] = {}
    if not fresh:
        wanted = {op.id for op in operations}
        wanted.update(op.parent_id for op in operations if op.parent_id)
        wanted.update(call.operation_id for call in calls if call.operation_id)
        existing = _existing_operation_ids(session_pk, wanted)
    new = [op.id for op in operations if op.id not in existing]
    return {**existing, **dict(zip(new, _allocate_ids(len(new)), strict=True))}, len(new)


def operation_rows(
    session_pk: int, operations: Iterable[OperationIn], ids: dict[str, int]
) -> list[tuple]:
    adapt_dt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":  # psycopg takes aware datetimes as they are
        return [
            (
                ids[op.id], session_pk, op.id, op.parent_id, ids.get(op.parent_id), op.name,
                op.started_at, op.ended_at, op.duration_s, op.success,
                op.error, metadata_json(op.metadata), op.cache_hits, op.cache_misses,
            )
            for op in operations
        ]
    return [
        (
            ids[op.id], session_pk, op.id, op.parent_id, ids.get(op.parent_id), op.name,
            adapt_dt(op.started_at), adapt_dt(op.ended_at), op.duration_s, op.success,
            op.error, metadata_json(op.metadata), op.cache_hits, op.cache_misses,
        )
        for op in operations
    ]


_encode_text = json.encoder.encode_basestring_ascii
_FLOAT_REPR = float.__repr__
_INF = float("inf")


def metadata_json(mapping: dict[str, Any]) -> str:
    """``json.dumps(mapping)``, character for character, written directly for the common
    flat mapping of text, integers, finite floats, booleans and nulls; anything else goes
    through json.dumps itself."""
    if not mapping:
        return "{}"
    parts = []
    for key, item in mapping.items():
        if type(key) is not str:
            return json.dumps(mapping)
        kind = type(item)
        if kind is str:
            text = _encode_text(item)
        elif kind is int:
            text = int.__repr__(item)
        elif kind is bool:
            text = "true" if item else "false"
        elif item is None:
            text = "null"
        elif kind is float and -_INF < item < _INF:
            text = _FLOAT_REPR(item)
        else:
            return json.dumps(mapping)
        parts.append(f"{_encode_text(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def api_call_rows(
    session_pk: int, calls: Iterable[ApiCallIn], ids: dict[str, int], *, default_at: datetime
) -> list[tuple]:
    """Rows for the calls; a call sent without a time is dated at ``default_at``, the
    session's start, so it can still be priced and rolled up by day."""
    adapt_dt = connection.ops.adapt_datetimefield_value
    client, pending = ApiCall.CostSource.CLIENT, ApiCall.CostSource.PENDING
    return [
        (
            session_pk, call.id, call.operation_id, ids.get(call.operation_id),
            call.provider or "", call.model or "", adapt_dt(call.at or default_at), call.latency_s,
            call.prompt_tokens, call.completion_tokens, call.cached_tokens,
            call.cache_write_tokens, call.cache_write_1h_tokens, call.reasoning_tokens,
            total_tokens(call),
            call.cost_usd, client if call.cost_usd is not None else pending,
            call.prompt_hash, call.error, call.error_message, call.streamed,
            call.time_to_first_token_s, call.attempts,
        )
        for call in calls
    ]


def total_tokens(call: ApiCallIn) -> int:
    if call.total_tokens is not None:
        return call.total_tokens
    return call.prompt_tokens + call.completion_tokens


def write_rows(table: Table, rows: Sequence[tuple[Any, ...]], *, fresh: bool) -> None:
    """Upsert ``rows``; ``fresh`` promises that none of them can exist yet."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy_rows(cursor, table, rows, fresh=fresh)
        else:
            placeholders = ", ".join(["%s"] * len(table.columns))
            cursor.executemany(
                f"INSERT INTO {table.name} ({table.column_list}) VALUES ({placeholders}) "
                f"{table.conflict_update}",
                rows,
            )


def _existing_operation_ids(session_pk: int, client_ids: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(client_ids)
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        found.update(
            Operation.objects.filter(session_id=session_pk, client_id__in=chunk).values_list(
                "client_id", "pk"
            )
        )
    return found


def _allocate_ids(count: int) -> list[int]:
    if count == 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence is looked up once, not once per id: nextval(pg_get_serial_sequence
            # (...)) in the select list would evaluate the lookup for every row.
            cursor.execute(
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) "
                "SELECT nextval(s.seq) FROM s, generate_series(1, %s)",
                [_OPS, count],
            )
            return [row[0] for row in cursor.fetchall()]
        # SQLite: the transaction holds the database's write lock (IMMEDIATE mode), so
        # nobody else can take ids between this read and the insert.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_OPS}")
        first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))


def _copy_rows(cursor, table: Table, rows: Sequence[tuple], *, fresh: bool) -> None:
    raw = cursor.cursor  # the psycopg cursor under Django's wrapper
    if fresh:
        _copy_into(raw, table.name, table, rows)
        return
    stage = f"stage_{table.name}"
    # ON COMMIT DROP scopes the staging table to this transaction: concurrent requests
    # on other connections never see it, and nothing is left behind on error.
    raw.execute(
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {table.column_list} FROM {table.name} WITH NO DATA"
    )
    _copy_into(raw, stage, table, rows)
    raw.execute(
        f"INSERT INTO {table.name} ({table.column_list}) "
        f"SELECT {table.column_list} FROM {stage} {table.conflict_update}"
    )
    raw.execute(f"DROP TABLE {stage}")


def _copy_into(raw_cursor, table_name: str, table: Table, rows: Sequence[tuple]) -> None:
    binary = table.binary_types is not None
    if binary:
        # Metadata arrives already written as JSON text (metadata_json): sent as it is.
        raw_cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
    options = " (FORMAT BINARY)" if binary else ""
    with raw_cursor.copy(f"COPY {table_name} ({table.column_list}) FROM STDIN{options}") as copy:
        if binary:
            copy.set_types(table.binary_types)
        for row in rows:
            copy.write_row(row)


class _JsonTextBinaryDumper(Dumper):
    """JSON text as a binary jsonb value (format version 1, then the text); psycopg's own
    jsonb dumper would serialise the string again, as a JSON string."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()
