"""Ingest throughput over real HTTP against the raw PostgreSQL COPY rate of the same rows,
in alternating windows of the same run.

Starts gunicorn as the production docs run it (``perfmon_site.asgi:application``, the
``asgi`` worker class, 2 workers; BENCH_WORKERS sets another count) on a scratch
PostgreSQL database. Then WINDOWS times (default 5), one after the other:

- an HTTP window: 4 concurrent clients post gzipped sessions of 1,000 operations and 50
  API calls for WINDOW_S seconds (default 4); its rate is the operations the database
  gained in the window over its wall time;
- a COPY floor window: the same rows a request writes (1,000 operation rows in binary, as
  ingest sends them, and 50 API-call rows in text, as ingest sends them) COPYed over one
  connection, one transaction per session, for WINDOW_S seconds, into scratch tables shaped
  like the real ones: ``LIKE ... INCLUDING ALL`` of each, partitioned by session_id like
  them (one partition), so the same columns, defaults, unique keys and indexes, but no
  foreign keys; its rate is operation rows per second (the API calls ride along, as
  they do in ingest's figure).

Each HTTP window and the COPY window after it make one ratio (http / copy); the result
is the median of the WINDOWS ratios with their min and max. Every window is capped in
sessions as well as time, so the measurement takes at most about WINDOWS * 2 * WINDOW_S
seconds (plus preparing the bodies and migrating the scratch database).
At the end every posted operation is checked to be stored. Prints one JSON object on its
last line: ratio_median, ratio_min, ratio_max, per-window rates, p50_ms, p99_ms (over all
HTTP requests), all_operations_stored and target_ratio.

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432; database BENCH_DB,
default perfmon_bench) and Redis (BENCH_REDIS, default redis://127.0.0.1:6379/12) on
loopback.
"""

import gzip
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import prune
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from servers import ROOT, Gunicorn, create_api_key, manage, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
DB_NAME = os.environ.get("BENCH_DB", "perfmon_bench")
OPERATIONS, API_CALLS = 1000, 50
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # the production command (README)
WINDOWS = int(os.environ.get("BENCH_WINDOWS", "5"))
WINDOW_S = float(os.environ.get("BENCH_WINDOW_S", "4"))
# Caps per window, whatever its duration: sessions posted, and sessions COPYed.
HTTP_SESSIONS_PER_WINDOW, COPY_SESSIONS_PER_WINDOW = 250, 600
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FLOOR_TABLES = {"metrics_operation": "bench_floor_ops", "metrics_apicall": "bench_floor_calls"}


def payload(session_id: str) -> dict:
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    ops = [{"id": "r", "parent_id": None, "name": "generate_full_script", "started_at": at(0),
            "ended_at": at(OPERATIONS), "duration_s": float(OPERATIONS), "success": True,
            "error": None, "metadata": {}}]
    ops += [
        {"id": f"o{i}", "parent_id": "r", "name": "dialogue_line", "started_at": at(i * 0.5),
         "ended_at": at(i * 0.5 + 0.4), "duration_s": 0.4, "success": True, "error": None,
         "metadata": {"line": i}, "cache_hits": 1, "cache_misses": 0}
        for i in range(OPERATIONS - 1)
    ]
    calls = [
        {"id": f"c{i}", "operation_id": f"o{i}", "provider": "openai", "model": "gpt-4o-mini",
         "at": at(i * 0.5), "latency_s": 1.2, "prompt_tokens": 700, "completion_tokens": 130,
         "cached_tokens": 0, "cache_write_tokens": 0, "total_tokens": 830, "cost_usd": None,
         "prompt_hash": None, "error": False, "error_message": None}
        for i in range(API_CALLS)
    ]
    return {
        "schema_version": 1,
        "session": {"id": session_id, "episode": "ep001", "workflow": "script_generation",
                    "status": "completed", "started_at": at(0), "ended_at": at(OPERATIONS),
                    "cache": {"hits": 999, "misses": 1}},
        "operations": ops,
        "api_calls": calls,
    }








class Jsonb(str):
    """JSON text sent as a binary jsonb value, as ingest.bulk sends metadata."""


class JsonbDumper(Dumper):
    format = Format.BINARY
    oid = 3802  # jsonb

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def run_clients(port: int, key: str, bodies: list[bytes], *, duration_s: float
                ) -> tuple[float, list[float], int]:
    """Post ``bodies`` from CLIENTS connections until they run out or ``duration_s``
    passes; (wall seconds, latencies of the requests, how many were not 201)."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    deadline = time.monotonic() + duration_s

    def client() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        while time.monotonic() < deadline:
            with lock:
                index = next(next_body, None)
            if index is None:
                return
            started = time.perf_counter()
            conn.request("POST", "/api/v1/sessions", body=bodies[index], headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 201:
                    failures += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, failures


def create_floor_tables(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Scratch copies of the raw tables, partitioned like them; their index definitions."""
    indexes = {}
    for real, floor in FLOOR_TABLES.items():
        conn.execute(f"DROP TABLE IF EXISTS {floor}")
        partitioned = conn.execute(
            "SELECT relkind = 'p' FROM pg_class WHERE relname = %s", [real]).fetchone()[0]
        # INCLUDING ALL: columns, defaults, the primary and unique keys and every index;
        # LIKE copies no foreign keys.
        if partitioned:
            conn.execute(f"CREATE TABLE {floor} (LIKE {real} INCLUDING ALL) "
                         "PARTITION BY RANGE (session_id)")
            conn.execute(f"CREATE TABLE {floor}_p PARTITION OF {floor} "
                         "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)")
            leaf = f"{floor}_p"
        else:
            conn.execute(f"CREATE TABLE {floor} (LIKE {real} INCLUDING ALL)")
            leaf = floor
        got = [row[0] for row in conn.execute(
            "SELECT regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '') "
            "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1", [leaf])]
        want = [row[0] for row in conn.execute(
            "SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') "
            "FROM pg_index i WHERE i.indrelid = ("
            "  SELECT coalesce((SELECT c.oid FROM pg_inherits h JOIN pg_class c "
            "  ON c.oid = h.inhrelid WHERE h.inhparent = %s::regclass "
            "  ORDER BY c.relname DESC LIMIT 1), %s::regclass)) ORDER BY 1", [real, real])]
        if got != want:
            raise RuntimeError(f"{floor} has indexes {got}, {real}'s partitions {want}")
        indexes[real] = got
    conn.commit()
    return indexes


def floor_rows(first_session: int, sessions: int, first_id: int
               ) -> list[tuple[list[tuple], list[tuple]]]:
    """The rows ingest.bulk writes for ``sessions`` sessions of the posted payload."""
    template = payload("floor")
    ops_template = []
    for index, op in enumerate(template["operations"]):
        ops_template.append((
            index, op["id"], op["parent_id"], op["name"],
            datetime.fromisoformat(op["started_at"]), datetime.fromisoformat(op["ended_at"]),
            op["duration_s"], op["success"], op["error"], Jsonb(json.dumps(op["metadata"])),
            op.get("cache_hits", 0), op.get("cache_misses", 0)))
    index_of = {op["id"]: i for i, op in enumerate(template["operations"])}
    out = []
    next_id = first_id
    for s in range(first_session, first_session + sessions):
        base = next_id
        ops = [(base + i, s, cid, parent, None if parent is None else base + index_of[parent],
                *rest) for i, cid, parent, *rest in ops_template]
        next_id += len(ops)
        calls = [
            (s, c["id"], c["operation_id"], base + index_of[c["operation_id"]], c["provider"],
             c["model"], datetime.fromisoformat(c["at"]), c["latency_s"], c["prompt_tokens"],
             c["completion_tokens"], c["cached_tokens"], c["cache_write_tokens"], 0, 0,
             c["total_tokens"], None, "pending", None, False, None, False, None, 1)
            for c in template["api_calls"]
        ]
        out.append((ops, calls))
    return out


def copy_window(conn: psycopg.Connection, rows: list[tuple[list[tuple], list[tuple]]],
                *, duration_s: float) -> tuple[float, int]:
    """COPY sessions' rows, one transaction per session, until they run out or
    ``duration_s`` passes; (wall seconds, operation rows copied). The columns, and their
    binary types, are those ingest.bulk COPYs."""
    from ingest.bulk import API_CALLS
    from ingest.bulk import OPERATIONS as OPERATIONS_TABLE

    ops_sql = (f"COPY {FLOOR_TABLES[OPERATIONS_TABLE.name]} ({OPERATIONS_TABLE.column_list}) "
               "FROM STDIN (FORMAT BINARY)")
    calls_sql = f"COPY {FLOOR_TABLES[API_CALLS.name]} ({API_CALLS.column_list}) FROM STDIN"
    copied = 0
    began = time.perf_counter()
    deadline = time.monotonic() + duration_s
    for session_ops, session_calls in rows:
        if time.monotonic() >= deadline:
            break
        with conn.cursor() as cur:
            with cur.copy(ops_sql) as copy:
                copy.set_types(OPERATIONS_TABLE.binary_types)
                for row in session_ops:
                    copy.write_row(row)
            with cur.copy(calls_sql) as copy:
                for row in session_calls:
                    copy.write_row(row)
        conn.commit()
        copied += len(session_ops)
    return time.perf_counter() - began, copied


def stored_operations(conn: psycopg.Connection) -> int:
    count = conn.execute(
        "SELECT count(*) FROM metrics_operation o JOIN metrics_session s "
        "ON s.id = o.session_id WHERE s.external_id LIKE 'bench%'"
    ).fetchone()[0]
    conn.commit()
    return count


def main() -> None:
    database_url = recreate_database(PG, DB_NAME)
    prune.setup_django(database_url)  # for ingest.bulk's column lists, read by the floor
    # Analysis is queued, as in production; no worker runs during the measurement.
    env = server_env(database_url, CELERY_BROKER_URL=REDIS, INGEST_RATE_LIMIT_PER_MINUTE="0")
    manage(env, "migrate", "-v0")
    key = create_api_key(env, "bench")
    count = WINDOWS * HTTP_SESSIONS_PER_WINDOW
    print(f"preparing {count} gzipped sessions of {OPERATIONS} operations...", flush=True)
    bodies = [gzip.compress(json.dumps(payload(f"bench{n}")).encode(), 5) for n in range(count)]

    http_rates, copy_rates, ratios, latencies = [], [], [], []
    failures = posted = 0
    server = Gunicorn(env, workers=WORKERS, app="perfmon_site.asgi:application",
                      worker_class="asgi").start()
    try:
        with psycopg.connect(database_url) as conn:
            conn.adapters.register_dumper(Jsonb, JsonbDumper)
            indexes = create_floor_tables(conn)
            # Warm-up, not measured: each worker's first requests import code and connect.
            warm = [gzip.compress(json.dumps(payload(f"warm{n}")).encode(), 5)
                    for n in range(6)]
            run_clients(server.port, key, warm, duration_s=60)
            floor_session, floor_id = 1, 1
            for window in range(WINDOWS):
                batch = bodies[posted : posted + HTTP_SESSIONS_PER_WINDOW]
                before = stored_operations(conn)
                elapsed, window_latencies, window_failures = run_clients(
                    server.port, key, batch, duration_s=WINDOW_S)
                gained = stored_operations(conn) - before
                posted += len(window_latencies)
                latencies += window_latencies
                failures += window_failures
                http_rates.append(gained / elapsed)

                rows = floor_rows(floor_session, COPY_SESSIONS_PER_WINDOW, floor_id)
                copy_elapsed, copied = copy_window(conn, rows, duration_s=WINDOW_S)
                floor_session += COPY_SESSIONS_PER_WINDOW
                floor_id += COPY_SESSIONS_PER_WINDOW * OPERATIONS
                copy_rates.append(copied / copy_elapsed)
                ratios.append(http_rates[-1] / copy_rates[-1])
                print(f"window {window + 1}: HTTP {len(window_latencies)} sessions, "
                      f"{http_rates[-1]:,.0f} ops/s; COPY {copied // OPERATIONS} sessions, "
                      f"{copy_rates[-1]:,.0f} rows/s; ratio {ratios[-1]:.3f}", flush=True)
            stored = stored_operations(conn)
            for floor in FLOOR_TABLES.values():
                conn.execute(f"DROP TABLE {floor}")
            conn.commit()
    finally:
        server.stop()
    subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                   cwd=ROOT, env=env, capture_output=True, timeout=60)

    sent_ops = posted * OPERATIONS
    print(f"{posted} sessions posted, {failures} not 201, {stored} of {sent_ops} operations "
          f"stored; floor indexes: {indexes['metrics_operation']}", flush=True)
    ordered = sorted(latencies)
    result = {
        "server": f"gunicorn asgi x{WORKERS}",
        "clients": CLIENTS,
        "windows": WINDOWS,
        "window_s": WINDOW_S,
        "sessions": posted,
        "operations_per_session": OPERATIONS,
        "api_calls_per_session": API_CALLS,
        "failures": failures,
        "all_operations_stored": failures == 0 and stored == sent_ops,
        "ops_per_s_http": [round(rate, 1) for rate in http_rates],
        "ops_per_s_copy": [round(rate, 1) for rate in copy_rates],
        "ratios": [round(ratio, 3) for ratio in ratios],
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "target_ratio": 0.5,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
