"""Bytes per stored row on PostgreSQL, and what a season of them weighs (docs/scaling.md).

Fills a fresh database through the ingest service path (``store_payload``, the same code
the API runs, COPY included) with sessions shaped like bench/ingest.py's but at the
season's ratio of one model call per five operations, analyzes them, vacuums, and divides
each table's heap (with TOAST) and index bytes by its rows. Prints one JSON object last:
measured bytes per row and the projection for 50 shows x 20 episodes x 10 runs x 2,000
operations (no reference to compare against: this measures, it does not race).
"""

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from servers import ROOT, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "perfmon_bench_sizes")
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "40"))
OPERATIONS, CALLS = 2000, 400
SEASON_SESSIONS = 50 * 20 * 10
TABLES = ("metrics_operation", "metrics_apicall", "metrics_session", "metrics_operationstat",
          "metrics_costline", "metrics_finding")


T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def payload(session_id: str) -> dict:
    """bench/ingest.py's session at 2,000 operations and 400 calls (its field values)."""
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    ops = [{"id": "r", "name": "generate_full_script", "started_at": at(0),
            "ended_at": at(OPERATIONS), "duration_s": float(OPERATIONS), "success": True}]
    ops += [{"id": f"o{i}", "parent_id": "r", "name": "dialogue_line",
             "started_at": at(i * 0.5), "ended_at": at(i * 0.5 + 0.4), "duration_s": 0.4,
             "success": True, "metadata": {"line": i}, "cache_hits": 1, "cache_misses": 0}
            for i in range(OPERATIONS - 1)]
    calls = [{"id": f"c{i}", "operation_id": f"o{i}", "provider": "openai",
              "model": "gpt-4o-mini", "at": at(i * 0.5), "latency_s": 1.2,
              "prompt_tokens": 700, "completion_tokens": 130, "total_tokens": 830}
             for i in range(CALLS)]
    return {"schema_version": 1, "operations": ops, "api_calls": calls,
            "session": {"id": session_id, "episode": "ep001", "workflow": "script_generation",
                        "status": "completed", "started_at": at(0), "ended_at": at(OPERATIONS),
                        "cache": {"hits": 1999, "misses": 1}}}


def fill(n: int) -> float:
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.analyze import analyze_session
    from metrics.models import Project

    project = Project.objects.get(slug="default")
    started = time.perf_counter()
    for i in range(n):
        stored = store_payload(project, SessionPayload.model_validate(
            payload(f"size-{i}")))
        analyze_session(stored.session)
    return time.perf_counter() - started


def measure() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        sizes = {}
        for table in TABLES:
            # A partitioned table's own size is 0: its partitions hold the rows.
            cursor.execute("SELECT sum(pg_table_size(relid)), sum(pg_indexes_size(relid)) "
                           "FROM pg_partition_tree(%s)", [table])
            heap, index = cursor.fetchone()
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows = cursor.fetchone()[0]
            per_row = max(rows, 1)  # an empty table: its pages, per nothing
            sizes[table] = {"rows": rows, "heap_bytes_per_row": round(heap / per_row, 1),
                            "index_bytes_per_row": round(index / per_row, 1)}
    return sizes


def season(sizes: dict) -> dict:
    per_session = {t: sizes[t]["rows"] / SESSIONS for t in TABLES}
    out = {}
    for table in TABLES:
        rows = per_session[table] * SEASON_SESSIONS
        s = sizes[table]
        out[table] = {"rows": round(rows),
                      "heap_gb": round(rows * s["heap_bytes_per_row"] / 1e9, 2),
                      "index_gb": round(rows * s["index_bytes_per_row"] / 1e9, 2)}
    out["total_gb"] = round(sum(v["heap_gb"] + v["index_gb"] for v in out.values()), 1)
    return out


def main() -> None:
    url = recreate_database(PG, DB_NAME)
    os.environ.update(server_env(url, LOG_LEVEL="ERROR"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    elapsed = fill(SESSIONS)
    sizes = measure()
    print(json.dumps({"bench": "sizes", "sessions": SESSIONS, "operations_per_session":
                      OPERATIONS, "calls_per_session": CALLS, "fill_s": round(elapsed, 1),
                      "measured": sizes, "season": season(sizes)}))


if __name__ == "__main__":
    main()
