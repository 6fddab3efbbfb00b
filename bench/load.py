"""Load: 32 client threads sending 200 sessions each (some in parts, some resent) to
gunicorn (2 sync workers) on PostgreSQL over loopback, for a bounded time.

Checks that every delivered session is stored exactly once with every operation and API
call, and that no request got a 5xx. Prints one JSON object on its last line with
sessions/s, operations/s and p50/p99 latency.
"""

import json
import os
import sys

from loadgen import run_load, verify_stored
from servers import Gunicorn, create_api_key, manage, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "perfmon_bench_load"
THREADS = int(os.environ.get("BENCH_THREADS", "32"))
SESSIONS_PER_THREAD = int(os.environ.get("BENCH_SESSIONS_PER_THREAD", "200"))
TIME_LIMIT_S = float(os.environ.get("BENCH_TIME_LIMIT_S", "360"))
OPERATIONS, API_CALLS = 20, 5




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


if __name__ == "__main__":
    sys.exit(main())
