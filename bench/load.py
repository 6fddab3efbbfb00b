"""Load: 32 client threads sending 200 sessions each (some in parts, some resent) to
gunicorn (2 sync workers) on PostgreSQL over loopback, for a bounded time.

Checks that every delivered session is stored exactly once with every operation and API
call, and that no request got a 5xx. Prints one JSON object on its last line with
sessions/s, operations/s and p50/p99 latency.

``python bench/load.py snapshots``: the snapshot-heavy profile. SNAPSHOT_SESSIONS running
sessions, each resent whole every SNAPSHOT_EVERY_S seconds with SNAPSHOT_GROWTH more
finished operations (and a call per ten) than the last time, as the SDK's running
snapshots do, until each holds SNAPSHOT_OPERATIONS; then each is sent finished. Prints the
raw tables' rows, row versions written by updates (``n_tup_upd``), dead row versions and
on-disk size (heap and indexes) afterwards: what the resends cost the tables.
"""

import gzip
import http.client
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from loadgen import run_load, verify_stored
from servers import Gunicorn, create_api_key, manage, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "perfmon_bench_load"
THREADS = int(os.environ.get("BENCH_THREADS", "32"))
SESSIONS_PER_THREAD = int(os.environ.get("BENCH_SESSIONS_PER_THREAD", "200"))
TIME_LIMIT_S = float(os.environ.get("BENCH_TIME_LIMIT_S", "360"))
OPERATIONS, API_CALLS = 20, 5
SNAPSHOT_SESSIONS = int(os.environ.get("BENCH_SNAPSHOT_SESSIONS", "8"))
SNAPSHOT_OPERATIONS = 2000
SNAPSHOT_GROWTH = 100
SNAPSHOT_EVERY_S = 0.5
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)




def main() -> int:
    database_url = recreate_database(PG, DB_NAME)
    # Analysis would run eagerly inside the requests without a broker; production queues
    # it, so the benchmark measures ingest with a broker URL nobody consumes from.
    env = server_env(database_url, CELERY_BROKER_URL=os.environ.get(
        "BENCH_REDIS", "redis://127.0.0.1:6379/13"))
    manage(env, "migrate", "-v0")
    # One key per four clients, as a fleet of generators would have.
    keys = [create_api_key(env, f"load {n}") for n in range(max(1, THREADS // 4))]
    server = Gunicorn(env, workers=2).start()
    try:
        print(f"{THREADS} clients x {SESSIONS_PER_THREAD} sessions of {OPERATIONS} "
              f"operations, at most {TIME_LIMIT_S:.0f}s...", flush=True)
        result = run_load(server.url, keys, threads=THREADS,
                          sessions_per_thread=SESSIONS_PER_THREAD, operations=OPERATIONS,
                          api_calls=API_CALLS, time_limit_s=TIME_LIMIT_S)
    finally:
        server.stop()
    check = verify_stored(database_url, result.sessions)
    summary = result.summary()
    whole = not (check["missing"] or check["unexpected"] or check["wrong"])
    print(f"delivered {summary['sessions']} sessions in {summary['elapsed_s']}s; stored "
          f"{check['stored']}; missing {len(check['missing'])}, duplicated or incomplete "
          f"{len(check['wrong'])}; 5xx: {summary['server_errors']}", flush=True)
    print(json.dumps({**summary, "threads": THREADS,
                      "sessions_per_thread": SESSIONS_PER_THREAD,
                      "all_stored_exactly_once": whole}))
    return 0 if whole and summary["server_errors"] == 0 else 1


def snapshot_payload(session_id: str, operations: int, *, finished: bool) -> dict:
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    ops = [{"id": f"o{i}", "parent_id": None, "name": "dialogue_line", "started_at": at(i),
            "ended_at": at(i + 0.5), "duration_s": 0.5, "success": True, "error": None,
            "metadata": {"line": i}} for i in range(operations)]
    calls = [{"id": f"c{i}", "operation_id": f"o{i * 10}", "provider": "openai",
              "model": "gpt-4o-mini", "at": at(i * 10), "latency_s": 0.4,
              "prompt_tokens": 700, "completion_tokens": 130} for i in range(operations // 10)]
    return {"schema_version": 1, "operations": ops, "api_calls": calls,
            "session": {"id": session_id, "episode": "ep001", "workflow": "script_generation",
                        "status": "completed" if finished else "running",
                        "started_at": at(0), "ended_at": at(operations) if finished else None}}


def send_snapshots(port: int, key: str, session_id: str, statuses: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    for count in range(SNAPSHOT_GROWTH, SNAPSHOT_OPERATIONS + 1, SNAPSHOT_GROWTH):
        finished = count == SNAPSHOT_OPERATIONS
        body = gzip.compress(json.dumps(snapshot_payload(session_id, count,
                                                         finished=finished)).encode())
        conn.request("POST", "/api/v1/sessions", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        time.sleep(SNAPSHOT_EVERY_S)


def table_costs(database_url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1.0)  # the statistics reach the views within a second or so
        costs = {}
        for table in ("metrics_operation", "metrics_apicall"):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            # pg_partition_tree: the table itself if plain, its partitions if partitioned
            upd, dead, heap, index = conn.execute(
                "SELECT sum(s.n_tup_upd), sum(s.n_dead_tup), sum(pg_table_size(t.relid)), "
                "sum(pg_indexes_size(t.relid)) FROM pg_partition_tree(%s) t "
                "JOIN pg_stat_user_tables s ON s.relid = t.relid", [table]).fetchone()
            costs[table] = {"rows": rows, "row_versions_updated": int(upd or 0),
                            "dead_row_versions": int(dead or 0), "heap_bytes": int(heap or 0),
                            "index_bytes": int(index or 0)}
    return costs


def pause_autovacuum(database_url: str) -> None:
    """So the dead row versions the resends leave are still there to be counted."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("metrics_operation", "metrics_apicall"):
            leaves = conn.execute("SELECT relid::regclass::text FROM pg_partition_tree(%s) "
                                  "WHERE isleaf", [table]).fetchall()
            for (leaf,) in leaves:
                conn.execute(f"ALTER TABLE {leaf} SET (autovacuum_enabled = false)")


def snapshots() -> int:
    database_url = recreate_database(PG, DB_NAME)
    env = server_env(database_url, CELERY_BROKER_URL=os.environ.get(
        "BENCH_REDIS", "redis://127.0.0.1:6379/13"), INGEST_RATE_LIMIT_PER_MINUTE="0")
    manage(env, "migrate", "-v0")
    pause_autovacuum(database_url)
    key = create_api_key(env, "snapshots")
    server = Gunicorn(env, workers=2).start()
    statuses: list[int] = []
    began = time.monotonic()
    try:
        threads = [threading.Thread(target=send_snapshots,
                                    args=(server.port, key, f"snap{n}", statuses))
                   for n in range(SNAPSHOT_SESSIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
    finally:
        server.stop()
    elapsed = time.monotonic() - began
    costs = table_costs(database_url)
    resends = SNAPSHOT_OPERATIONS // SNAPSHOT_GROWTH
    print(json.dumps({
        "profile": "snapshots", "sessions": SNAPSHOT_SESSIONS, "sends_per_session": resends,
        "operations_per_session": SNAPSHOT_OPERATIONS, "elapsed_s": round(elapsed, 1),
        "statuses": {str(code): statuses.count(code) for code in sorted(set(statuses))},
        # every send but the first resends the finished rows of the one before
        "operation_rows_resent_unchanged": SNAPSHOT_SESSIONS * sum(
            count for count in range(SNAPSHOT_GROWTH, SNAPSHOT_OPERATIONS, SNAPSHOT_GROWTH)),
        "tables": costs,
    }))
    return 0 if set(statuses) <= {200, 201} else 1


if __name__ == "__main__":
    sys.exit(snapshots() if sys.argv[1:] == ["snapshots"] else main())
