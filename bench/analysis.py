"""Analysis cost on PostgreSQL, each figure beside its floor measured in the same run.

(a) ``analyze_session`` on one session of 10,000 operations and 2,000 API calls, against
    one plain query fetching that session's operation rows and API-call rows.
(b) ``rollups.rebuild_all`` over 10,000 analyzed sessions holding 1,000,000 operations and
    200,000 API calls, against one plain aggregate scan (count, sum) of each table.

Prints one JSON object on its last line. Needs PostgreSQL on loopback (BENCH_PG).
"""

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from servers import recreate_database

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "perfmon_bench_analysis"
REPEATS = 5
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)




def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def big_session_payload(operations: int, calls: int) -> dict:
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    names = ["scene_generation", "dialogue", "stage_directions", "comedy_analysis"]
    ops = [{"id": "root", "name": "generate_full_script", "started_at": at(0),
            "ended_at": at(operations), "duration_s": float(operations), "success": True}]
    for i in range(operations - 1):
        ops.append({"id": f"o{i}", "parent_id": "root", "name": names[i % 4],
                    "started_at": at(i), "ended_at": at(i + 0.8), "duration_s": 0.8,
                    "success": i % 97 != 0, "metadata": {"i": i},
                    "cache_hits": i % 3, "cache_misses": 1})
    api_calls = [
        {"id": f"c{j}", "operation_id": f"o{j * 4}", "provider": "openai",
         "model": ["gpt-4o-mini", "gpt-4o", "unknown-model"][j % 3], "at": at(j * 4),
         "latency_s": 0.5, "prompt_tokens": 800, "completion_tokens": 120,
         "cached_tokens": 200 if j % 2 else 0, "prompt_hash": f"h{j % 500}",
         "error": j % 50 == 0}
        for j in range(calls)
    ]
    return {"schema_version": 1,
            "session": {"id": "big", "episode": "ep001", "workflow": "script_generation",
                        "status": "completed", "started_at": at(0), "ended_at": at(operations)},
            "operations": ops, "api_calls": api_calls}


def median_time(fn) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_analyze_session() -> dict:
    from django.db import connection

    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.analyze import analyze_session
    from metrics.models import Project

    project = Project.objects.get(slug="default")
    payload = SessionPayload.model_validate(big_session_payload(10_000, 2_000))
    session = store_payload(project, payload).session
    analyze_session(session)  # warm up: the first run prices and fills rollups

    def floor() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM metrics_operation WHERE session_id = %s", [session.pk])
            cursor.fetchall()
            cursor.execute("SELECT * FROM metrics_apicall WHERE session_id = %s", [session.pk])
            cursor.fetchall()

    floor_s = median_time(floor)
    analyze_s = median_time(lambda: analyze_session(session))
    return {"analyze_session_s": round(analyze_s, 4), "analyze_floor_s": round(floor_s, 4),
            "analyze_ratio": round(analyze_s / floor_s, 2)}


GENERATE_SQL = """
INSERT INTO metrics_episode (project_id, code, title, notes, created_at)
SELECT 1, 'ep' || lpad(e::text, 4, '0'), '', '', now() FROM generate_series(1, 200) e;

INSERT INTO metrics_session (project_id, episode_id, external_id, workflow, release,
    environment, host, status, started_at, ended_at, duration_s, cache_hits, cache_misses,
    cache_by_name, counters, tags, metadata, notes, api_calls_count, api_errors_count,
    prompt_tokens, completion_tokens, total_tokens, cost_usd, operations_count, is_baseline,
    received_at, merged_at, analyzed_at, rollup_episode, rollup_workflow, edited_fields)
SELECT 1, (SELECT id FROM metrics_episode WHERE code = 'ep' || lpad((1 + s %% 200)::text, 4, '0')),
    'gen' || s, (ARRAY['script_generation', 'comedy_pass'])[1 + s %% 2], 'r1', 'bench', 'h',
    'completed', %(t0)s::timestamptz + s * interval '10 minutes',
    %(t0)s::timestamptz + s * interval '10 minutes' + interval '100 seconds', 100, 10, 5,
    '{}', '{}', '[]', '{}', '', 20, 0, 0, 0, 0, 0, 100, false, now(), now(), now(), '', '', '[]'
FROM generate_series(1, 10000) s;

INSERT INTO metrics_operation (session_id, client_id, name, started_at, ended_at,
    duration_s, success, metadata, cache_hits, cache_misses)
SELECT s.id, 'o' || o, (ARRAY['scene_generation', 'dialogue', 'stage_directions',
    'comedy_analysis', 'optimize'])[1 + o % 5],
    s.started_at + o * interval '1 second', s.started_at + o * interval '1 second'
    + interval '0.9 seconds', 0.9, o % 50 <> 0, '{}', o % 2, 1
FROM metrics_session s CROSS JOIN generate_series(1, 100) o WHERE s.external_id LIKE 'gen%%';

INSERT INTO metrics_apicall (session_id, client_id, operation_client_id, provider, model,
    at, latency_s, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
    total_tokens, cost_usd, cost_source, error)
SELECT s.id, 'c' || c, 'o' || (c * 5), 'openai', (ARRAY['gpt-4o-mini', 'gpt-4o'])[1 + c % 2],
    s.started_at + c * interval '5 seconds', 0.7, 900, 150, 100, 0, 1050,
    0.00042, 'price_table', c %% 40 = 0
FROM metrics_session s CROSS JOIN generate_series(1, 20) c WHERE s.external_id LIKE 'gen%%';

INSERT INTO metrics_operationstat (session_id, name, occurrences, failures,
    total_duration_s, self_time_s, share, is_bottleneck, cache_hits, cache_misses)
SELECT session_id, name, count(*), count(*) FILTER (WHERE NOT success), sum(duration_s),
    sum(duration_s), sum(duration_s) / 100, false, sum(cache_hits), sum(cache_misses)
FROM metrics_operation WHERE session_id IN (
    SELECT id FROM metrics_session WHERE external_id LIKE 'gen%%')
GROUP BY session_id, name;
ANALYZE;
"""


def bench_rebuild(database_url: str) -> dict:
    from metrics.analysis import rollups

    with psycopg.connect(database_url) as conn:
        for statement in GENERATE_SQL.split(";\n"):
            if "%(t0)s" in statement:
                conn.execute(statement, {"t0": T0})
            elif statement.strip():
                conn.execute(statement.replace("%%", "%"))
        conn.commit()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM metrics_session), "
            "(SELECT count(*) FROM metrics_operation), (SELECT count(*) FROM metrics_apicall)"
        ).fetchone()
    print(f"data: {counts[0]} sessions, {counts[1]} operations, {counts[2]} API calls",
          flush=True)

    def floor() -> None:
        with psycopg.connect(database_url) as conn:
            conn.execute("SELECT count(*), sum(duration_s) FROM metrics_operation").fetchone()
            conn.execute("SELECT count(*), sum(total_tokens) FROM metrics_apicall").fetchone()

    floor_s = median_time(floor)
    rebuild_s = median_time(rollups.rebuild_all)
    return {"sessions": counts[0], "operations": counts[1], "api_calls": counts[2],
            "rebuild_s": round(rebuild_s, 4), "rebuild_floor_s": round(floor_s, 4),
            "rebuild_ratio": round(rebuild_s / floor_s, 2)}


def main() -> None:
    database_url = recreate_database(PG, DB_NAME)
    setup_django(database_url)
    result = bench_analyze_session()
    print(f"(a) analyze_session: {result['analyze_session_s']}s against a floor of "
          f"{result['analyze_floor_s']}s", flush=True)
    result.update(bench_rebuild(database_url))
    print(f"(b) rebuild_all: {result['rebuild_s']}s against a floor of "
          f"{result['rebuild_floor_s']}s", flush=True)
    result["targets"] = {"analyze_ratio_max": 5, "rebuild_ratio_max": 5}
    result["targets_met"] = result["analyze_ratio"] <= 5 and result["rebuild_ratio"] <= 5
    print(json.dumps(result))


if __name__ == "__main__":
    main()
