"""Monthly partitions of the raw tables on PostgreSQL (SQLite keeps plain tables).

Operations and API calls are range-partitioned by ``session_id``. Session keys grow with
time, and each month's sessions take their keys from that month's block,
``YYYYMM * 10**7`` (the session sequence is moved to the block when the month begins), so a
partition holds the rows of one month's sessions:

- one session's rows are always in one partition, and a read of one session (the pages'
  commonest) touches only it;
- the unique (session, client id) key includes the partition key, so ingest's
  ``ON CONFLICT`` upserts keep working;
- retention drops a month's partitions once every session in them may be pruned, instead
  of deleting its rows batch by batch.

Rows of sessions created before partitioning stay in ``<table>_before_<YYYYMM>``; keys
beyond the partitions made so far land in ``<table>_default``, so nothing is refused if the
periodic task that makes them ahead (``maintain_partitions``) has not run for months.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import OperationalError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLES = ("metrics_operation", "metrics_apicall")
SESSION_TABLE = "metrics_session"
BLOCK = 10**7  # session keys per month: far more sessions than a month will hold
MONTHS_AHEAD = 2
# A partition is dropped under an ACCESS EXCLUSIVE lock on its parent: ingest waits at
# most this long behind it, and a drop that cannot get the lock is tried on the next run.
DROP_LOCK_TIMEOUT = "2s"
_ADVISORY_KEY = 7_301_017  # serialises maintain_partitions between processes


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLES[0]])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def month_block(day: date) -> int:
    """The first session key of ``day``'s month."""
    return (day.year * 100 + day.month) * BLOCK


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_partition_name(table: str, day: date) -> str:
    return f"{table}_y{day.year:04d}m{day.month:02d}"


@dataclass(frozen=True)
class Partition:
    table: str  # the parent
    name: str
    low: int | None  # None: MINVALUE
    high: int | None  # None: MAXVALUE; both None: the default partition

    @property
    def is_default(self) -> bool:
        return self.low is None and self.high is None


_BOUND = re.compile(r"FROM \((MINVALUE|'?-?\d+'?)\) TO \((MAXVALUE|'?-?\d+'?)\)")


def _bound(text: str) -> int | None:
    return None if text.endswith("VALUE") else int(text.strip("'"))


def partitions(table: str) -> list[Partition]:
    """``table``'s partitions, lowest range first, the default partition last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match is None:  # DEFAULT
            found.append(Partition(table, name, None, None))
        else:
            found.append(Partition(table, name, _bound(match[1]), _bound(match[2])))
    return sorted(found, key=lambda p: (p.is_default, p.low is not None, p.low or 0))


def create_partitioned_tables(schema_editor, *, today: date) -> None:
    """Turn the plain raw tables into partitioned ones, keeping rows, keys and indexes.

    Run by the migration, in its transaction. Rows are copied, so on a large database
    this takes a while (docs/scaling.md has the figures).
    """
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            _rebuild(cursor, table, today=today)
        _advance_session_keys(cursor, month_block(today))


def drop_partitioning(schema_editor) -> None:
    """The migration's way back: plain tables again, with the same rows and keys."""
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            _rebuild(cursor, table, today=None)


def _rebuild(cursor, table: str, *, today: date | None) -> None:
    """Copy ``table`` into a new one, partitioned by month from ``today`` (plain if None),
    which then takes its name, sequence, keys and indexes."""
    index_defs, constraints = _indexes_and_constraints(cursor, table)
    new = f"{table}__rebuilt"
    like = f"(LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    if today is None:
        cursor.execute(f"CREATE TABLE {new} {like}")
    else:
        cursor.execute(f"CREATE TABLE {new} {like} PARTITION BY RANGE (session_id)")
        _create_first_partitions(cursor, new, table, today)
    cursor.execute(f"ALTER TABLE {new} ALTER COLUMN id DROP DEFAULT")
    cursor.execute(f"INSERT INTO {new} SELECT * FROM {table}")
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    last_id = cursor.fetchone()[0]
    cursor.execute(f"DROP TABLE {table}")  # with its sequence
    cursor.execute(f"ALTER TABLE {new} RENAME TO {table}")
    if today is None:
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)")
    else:
        # PostgreSQL 15 has no identity columns on partitioned tables: a sequence it owns
        # does the same (and pg_get_serial_sequence still finds it).
        cursor.execute(f"CREATE SEQUENCE {table}_id_seq AS bigint OWNED BY {table}.id")
        cursor.execute(
            f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')"
        )
        # The partition key must be in every unique key; id leads, so a lookup by id
        # alone still uses it (one probe per partition).
        cursor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, session_id)"
        )
    if last_id:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, last_id])
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for definition in index_defs:
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))


def _indexes_and_constraints(cursor, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The definitions of ``table``'s indexes (but the primary key's and the unique
    constraints') and of its unique and foreign-key constraints."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
        "AND c.conrelid = i.indrelid) ORDER BY i.indexrelid",
        [table],
    )
    index_defs = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
        [table],
    )
    return index_defs, cursor.fetchall()


def _create_first_partitions(cursor, parent: str, table: str, today: date) -> None:
    cursor.execute(
        f"CREATE TABLE {table}_before_{today:%Y%m} PARTITION OF {parent} "
        f"FOR VALUES FROM (MINVALUE) TO ({month_block(today)})"
    )
    for months in range(MONTHS_AHEAD + 1):
        _create_month(cursor, parent, table, _add_months(today, months))
    cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {parent} DEFAULT")


def _create_month(cursor, parent: str, table: str, month: date) -> None:
    low, high = month_block(month), month_block(_add_months(month, 1))
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {month_partition_name(table, month)} PARTITION OF "
        f"{parent} FOR VALUES FROM ({low}) TO ({high})"
    )


def _advance_session_keys(cursor, block: int) -> None:
    """Move the session sequence to ``block`` unless it is past it already."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [SESSION_TABLE])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT last_value FROM {sequence}")
    if cursor.fetchone()[0] < block:
        # setval(key, false): the next session gets ``key`` itself; past any session of
        # the block already there (a sequence moved back by hand), never onto one
        cursor.execute(f"SELECT GREATEST(%s, COALESCE(MAX(id), 0) + 1) FROM {SESSION_TABLE}",
                       [block])
        cursor.execute("SELECT setval(%s, %s, false)", [sequence, cursor.fetchone()[0]])


def maintain_partitions(*, now: datetime | None = None) -> list[str]:
    """Make this month's and the next months' partitions, and start this month's session
    keys at its block. Idempotent; returns the partitions it created."""
    if not is_partitioned():
        return []
    today = (now or timezone.now()).astimezone(UTC).date()
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_KEY])
        for table in TABLES:
            existing = {p.name for p in partitions(table)}
            for months in range(MONTHS_AHEAD + 1):
                month = _add_months(today, months)
                name = month_partition_name(table, month)
                if name not in existing:
                    _create_month_beside_default(cursor, table, month)
                    created.append(name)
        _advance_session_keys(cursor, month_block(today))
    return created


def _create_month_beside_default(cursor, table: str, month: date) -> None:
    """Create a month's partition; rows of its range already in the default move to it.

    PostgreSQL refuses a new partition whose range has rows in the default partition, so
    those rows (of sessions whose keys ran ahead of the partitions) are moved first.
    """
    low, high = month_block(month), month_block(_add_months(month, 1))
    name = month_partition_name(table, month)
    default = f"{table}_default"
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {default} WHERE session_id >= %s AND session_id < %s)",
        [low, high],
    )
    if not cursor.fetchone()[0]:
        _create_month(cursor, table, table, month)
        return
    cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {default} WHERE session_id >= %s AND session_id < %s "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
        [low, high],
    )
    cursor.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
    )


def drop_partition(partition: Partition) -> bool:
    """Drop one partition (its rows are gone with it); False if ingest held the lock past
    the timeout, to try again later."""
    if partition.is_default:
        raise ValueError("the default partition is never dropped")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            # Checks deferred to the commit of rows written in this transaction (only ever
            # the case in tests) would keep the table from being dropped: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP TABLE {partition.name}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except OperationalError as error:
        logger.warning("%s not dropped, tried again on the next run: %s", partition.name, error)
        return False
    return True


def row_counts(partition: Partition) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.name}")
        return cursor.fetchone()[0]
