"""Ingest throughput over real HTTP against the raw PostgreSQL COPY rate of the same rows.

Starts gunicorn (2 sync workers) on a scratch PostgreSQL database, posts gzipped sessions
of 1,000 operations and 50 API calls from concurrent clients for a bounded time, checks
that every operation was stored, then COPYs the same rows into a scratch table in the
same run. Prints one JSON object on its last line:
ops_per_s_http, ops_per_s_copy, ratio (http / copy), p50_ms, p99_ms.

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/14) on loopback.
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

import psycopg
from servers import ROOT, Gunicorn, create_api_key, manage, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
DB_NAME = "perfmon_bench"
OPERATIONS, API_CALLS = 1000, 50
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "20"))
MAX_SESSIONS = 2000  # per run, whatever the duration
COPY_ROWS = 100_000
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


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








def run_clients(port: int, key: str, bodies: list[bytes]) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    deadline = time.monotonic() + DURATION_S

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

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, failures


def copy_rate(database_url: str) -> float:
    """Rows/s for COPY of operation rows (as ingest writes them) into a scratch table."""
    sessions = COPY_ROWS // OPERATIONS
    rows_by_session = []
    for s in range(sessions):
        ops = payload(f"copy{s}")["operations"]
        rows_by_session.append([
            (s, op["id"], op["parent_id"], op["name"], datetime.fromisoformat(op["started_at"]),
             datetime.fromisoformat(op["ended_at"]), op["duration_s"], op["success"],
             op["error"], json.dumps(op["metadata"]), op.get("cache_hits", 0),
             op.get("cache_misses", 0))
            for op in ops
        ])
    columns = ("session_id, client_id, parent_client_id, name, started_at, ended_at, "
               "duration_s, success, error, metadata, cache_hits, cache_misses")
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_ops")
        # Same columns, defaults and indexes as the real table (LIKE copies no FKs).
        conn.execute("CREATE TABLE bench_copy_ops (LIKE metrics_operation INCLUDING ALL)")
        conn.commit()
        began = time.perf_counter()
        for rows in rows_by_session:  # one transaction per session, as ingest does
            with conn.cursor() as cur:
                with cur.copy(f"COPY bench_copy_ops ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - began
        conn.execute("DROP TABLE bench_copy_ops")
        conn.commit()
    return sessions * OPERATIONS / elapsed


def stored_operations(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM metrics_operation o JOIN metrics_session s "
            "ON s.id = o.session_id WHERE s.external_id LIKE 'bench%'"
        ).fetchone()[0]


def main() -> None:
    database_url = recreate_database(PG, DB_NAME)
    # Analysis is queued, as in production; no worker runs during the measurement.
    env = server_env(database_url, CELERY_BROKER_URL=REDIS, INGEST_RATE_LIMIT_PER_MINUTE="0")
    manage(env, "migrate", "-v0")
    key = create_api_key(env, "bench")
    count = min(MAX_SESSIONS, int(DURATION_S * 40))
    print(f"preparing {count} gzipped sessions of {OPERATIONS} operations...", flush=True)
    bodies = [gzip.compress(json.dumps(payload(f"bench{n}")).encode(), 5) for n in range(count)]

    server = Gunicorn(env, workers=2).start()
    try:
        # Warm-up, not measured: each worker's first requests import code and connect.
        warm = [gzip.compress(json.dumps(payload(f"warm{n}")).encode(), 5) for n in range(6)]
        run_clients(server.port, key, warm)
        elapsed, latencies, failures = run_clients(server.port, key, bodies)
    finally:
        server.stop()
    subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                   cwd=ROOT, env=env, capture_output=True, timeout=60)

    sent_ops = len(latencies) * OPERATIONS
    stored = stored_operations(database_url)
    ops_http = stored / elapsed
    print(f"HTTP: {len(latencies)} sessions in {elapsed:.1f}s, {failures} not 201, "
          f"{stored} of {sent_ops} operations stored", flush=True)
    ops_copy = copy_rate(database_url)
    print(f"COPY: {ops_copy:,.0f} rows/s", flush=True)
    ordered = sorted(latencies)
    result = {
        "clients": CLIENTS,
        "sessions": len(latencies),
        "operations_per_session": OPERATIONS,
        "api_calls_per_session": API_CALLS,
        "failures": failures,
        "all_operations_stored": stored == sent_ops,
        "ops_per_s_http": round(ops_http, 1),
        "ops_per_s_copy": round(ops_copy, 1),
        "ratio": round(ops_http / ops_copy, 3),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "target_ratio": 0.3,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
