"""Where the time of one POST /api/v1/sessions goes, section by section.

Drives the whole Django stack in-process (middleware, ninja, store_payload) with the
payload bench/ingest.py posts (1,000 operations, 50 API calls, gzipped), one request at a
time on a scratch PostgreSQL database (the app loaded through perfmon_site.wsgi, as gunicorn
loads it), and wraps the functions a request passes through
with timers. Prints a Markdown table: wall milliseconds per request and the CPU the Django
process spent in each section, then the CPU of the request's PostgreSQL backend.

Sections nest: "parse+validate" holds "json parse", "commit + on_commit" holds "commit"
and "publish", "store_payload" holds 4-9. No profiler runs, so the figures are not
inflated by one; on a shared machine they still move with its load (quoted with them).

    .venv/bin/python bench/ingest_sections.py      # N=60 requests by default
"""

import collections
import functools
import gzip
import inspect
import json
import os
import runpy
import sys
import time

from servers import ROOT, create_api_key, manage, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
N = int(os.environ.get("N", "60"))
# bench/ingest.py by path: on sys.path as "ingest" it would shadow the Django app.
payload = runpy.run_path(str(ROOT / "bench" / "ingest.py"), run_name="bench_ingest")["payload"]

WALL: dict[str, float] = collections.defaultdict(float)
CPU: dict[str, float] = collections.defaultdict(float)


def timed(label: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            WALL[label] += time.perf_counter() - wall
            CPU[label] += time.process_time() - cpu

    return wrapper


def wrap(owner, name: str, label: str) -> None:
    original = inspect.getattr_static(owner, name)  # as defined, maybe on a base class
    if isinstance(original, classmethod):
        setattr(owner, name, classmethod(timed(label, original.__func__)))
    else:
        setattr(owner, name, timed(label, original))


def instrument() -> None:
    import django.core.handlers.base as handlers
    import ninja.operation
    import ninja.params.models
    from django.db import transaction
    from django.db.backends.base.base import BaseDatabaseWrapper

    import metrics.dispatch
    from ingest import bulk, middleware, parser, services

    wrap(handlers.BaseHandler, "get_response", "Σ whole request (Django handler)")
    wrap(ninja.operation.Operation, "_run_checks", "0 auth + throttle")
    wrap(middleware, "_gunzip", "1 inflate")
    wrap(ninja.params.models.BodyModel, "resolve", "2+3 parse+validate (ninja body)")
    wrap(parser, "parse_json", "2 json parse")
    wrap(services, "store_payload", "Σ store_payload")
    wrap(services, "_lock_or_create_session", "4 create session")
    wrap(services, "_check_storable", "5 checks (sums, cycles)")
    wrap(bulk, "operation_ids", "6 allocate ids")
    wrap(bulk, "operation_rows", "7 build rows")
    wrap(bulk, "api_call_rows", "7 build rows")
    wrap(bulk, "write_rows", "8 COPY")
    if hasattr(services, "refresh_session_totals"):
        wrap(services, "refresh_session_totals", "9 totals refresh")
    wrap(transaction.Atomic, "__exit__", "B commit + on_commit")
    wrap(BaseDatabaseWrapper, "commit", "B1 commit")
    wrap(metrics.dispatch, "publish_now", "B2 publish to the broker")
    wrap(ninja.operation.Operation, "_result_to_response", "C response")


def backend_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    env = server_env(recreate_database(PG, "perfmon_sections"), CELERY_BROKER_URL=REDIS,
                     INGEST_RATE_LIMIT_PER_MINUTE="0")
    manage(env, "migrate", "-v0")
    key = create_api_key(env, "sections")
    os.environ.update(env, DJANGO_SETTINGS_MODULE="perfmon_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    import perfmon_site.wsgi  # noqa: F401 (loaded as gunicorn loads it, with its settings)

    instrument()
    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_CONTENT_ENCODING": "gzip"}
    bodies = [gzip.compress(json.dumps(payload(f"sec{n}")).encode(), 5) for n in range(N + 3)]

    def post(body: bytes) -> None:
        response = client.post("/api/v1/sessions", body, content_type="application/json",
                               **headers)
        assert response.status_code == 201, response.content

    for body in bodies[:3]:  # warm-up: imports, connection
        post(body)
    WALL.clear()
    CPU.clear()
    backend = connection.connection.info.backend_pid
    pg_before, py_before, began = backend_cpu_s(backend), time.process_time(), time.perf_counter()
    for body in bodies[3:]:
        post(body)
    wall = time.perf_counter() - began
    py_cpu, pg_cpu = time.process_time() - py_before, backend_cpu_s(backend) - pg_before
    load = open("/proc/loadavg").read().split()[0]
    print(f"{N} requests one at a time: {wall / N * 1000:.1f} ms wall per request; CPU per "
          f"request: Django process {py_cpu / N * 1000:.1f} ms, its PostgreSQL backend "
          f"{pg_cpu / N * 1000:.1f} ms; load average {load}")
    print("| section | wall ms/request | Django-process CPU ms/request |")
    print("|---|---:|---:|")
    for label in sorted(WALL):
        print(f"| {label} | {WALL[label] / N * 1000:.2f} | {CPU[label] / N * 1000:.2f} |")


if __name__ == "__main__":
    main()
