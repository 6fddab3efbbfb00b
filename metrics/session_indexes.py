"""Rebuilding the session table's indexes, which session writes leave half empty
(PostgreSQL; SQLite has nothing to do).

A session row is written when each part of it arrives and when it is analysed. Its figures
are in the covering indexes (the overview's period index, the episodes table's), so such a
write is seldom a HOT update: it adds an entry to every index beside the old one, splitting
full pages. VACUUM takes the old entries away but not the splits, and keys only grow with
time, so nothing fills those pages again. On the dashboard bench's 10M-operation database
(100,003 sessions, each cloned and rekeyed once) the period index was 54.9 MB and all the
session indexes 108.4 MB; rebuilt, 18.6 and 39.9 MB, in 0.8 s, and the overview's median went
from 115.2 to 67.1 ms (docs/scaling.md).

``REINDEX TABLE CONCURRENTLY`` builds each index anew beside the old one and swaps them:
ingest and the pages go on reading and writing meanwhile (it takes SHARE UPDATE EXCLUSIVE,
which only VACUUM, ANALYZE and schema changes wait for). A rebuild cut off half way leaves
an invalid ``<index>_ccnew`` (or ``_ccold``) behind, which the next run drops first.
"""

import logging
import re
from dataclasses import dataclass, field

from django.db import connection

logger = logging.getLogger(__name__)

TABLE = "metrics_session"
LEFTOVER = re.compile(r"_cc(new|old)\d*$")
_ADVISORY_KEY = 7_301_018  # one rebuild at a time between processes


@dataclass
class Rebuild:
    ran: bool = False
    dropped_leftovers: list[str] = field(default_factory=list)
    bytes_before: dict[str, int] = field(default_factory=dict)  # by index
    bytes_after: dict[str, int] = field(default_factory=dict)


def index_sizes() -> dict[str, int]:
    """Bytes of each valid index of the session table."""
    return dict(_rows(
        "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND x.indisvalid ORDER BY i.relname", [TABLE]))


def rebuild_session_indexes(*, progress=None) -> Rebuild:
    """Rebuild every index of the session table without locking ingest out.

    Runs outside a transaction (PostgreSQL refuses REINDEX CONCURRENTLY inside one). Does
    nothing on SQLite, or while another process is rebuilding them.
    """
    result = Rebuild()
    if connection.vendor != "postgresql":
        return result
    if connection.in_atomic_block:
        raise RuntimeError("rebuild_session_indexes must run outside a transaction")
    say = progress or (lambda line: None)
    (locked,), = _rows("SELECT pg_try_advisory_lock(%s)", [_ADVISORY_KEY])
    if not locked:
        say("Another process is rebuilding the session indexes; nothing done.")
        return result
    try:
        for name in _invalid_leftovers():
            say(f"Dropping {name}, left over from a rebuild that did not finish")
            _execute(f"DROP INDEX CONCURRENTLY IF EXISTS {connection.ops.quote_name(name)}")
            result.dropped_leftovers.append(name)
        result.bytes_before = index_sizes()
        say(f"Rebuilding {len(result.bytes_before)} indexes of {TABLE} "
            f"({_mb(sum(result.bytes_before.values()))})")
        _execute(f"REINDEX TABLE CONCURRENTLY {TABLE}")
        result.bytes_after = index_sizes()
        result.ran = True
        say(f"Rebuilt: {_mb(sum(result.bytes_before.values()))} -> "
            f"{_mb(sum(result.bytes_after.values()))}")
    finally:
        _rows("SELECT pg_advisory_unlock(%s)", [_ADVISORY_KEY])
    logger.info("session indexes rebuilt: %s -> %s bytes", sum(result.bytes_before.values()),
                sum(result.bytes_after.values()))
    return result


def _invalid_leftovers() -> list[str]:
    names = [name for (name,) in _rows(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisvalid", [TABLE])]
    return [name for name in names if LEFTOVER.search(name)]


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _rows(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _execute(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)
