"""Pruning a month of 1,000,000 operations while ingest keeps writing, on PostgreSQL.

Builds a scratch database with one past month of 500 analyzed sessions of 2,000 operations
and 400 API calls (one session stored through the ingest service and analyzed, then copied
in SQL: 1M operations, 200k calls, with their parent and operation links), all older than
the 90-day retention period. gunicorn (2 sync workers) serves ingest meanwhile, and two
clients post sessions of 200 operations without pause, from a few seconds before the prune
until a few seconds after it, timing each request.

The month is pruned twice, on a fresh copy each time:

- ``drop``: as retention does it, every session of the month prunable, so its two
  partitions are dropped;
- ``batched``: one session of the month pinned, so the month must stay and the other 499
  sessions lose their rows in batched deletes (5,000 rows a transaction), the path every
  month with a session to keep takes.

Prints one JSON object on its last line: per mode the prune's seconds, rows removed, the
ingest requests answered during the prune, their p50 and p99 (ms) and failures, beside the
p99 of the requests before it; ``ingest_kept_answering`` is true when no request failed
and requests were answered during each prune. Needs PostgreSQL (BENCH_PG) and Redis (BENCH_REDIS,
default db 11: ingest queues the analyses, which no worker runs) on loopback.
"""

import gzip
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from servers import ROOT, Gunicorn, create_api_key, recreate_database, server_env

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# Ingest queues analysis, as in production; no worker runs, the queue is purged after.
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
DB_NAME = "perfmon_bench_prune"
SESSIONS = int(os.environ.get("BENCH_PRUNE_SESSIONS", "500"))
OPERATIONS, CALLS = 2000, 400
LOAD_OPERATIONS = 200
CLIENTS = 2
WARM_UP_S = 3.0  # the load's first requests, not counted
BEFORE_S = AFTER_S = 5.0
MAX_LOAD_S = 600  # the load stops by then whatever the prune does
FIRST_KEY = 1_000_000  # the month's first session key
ID_STRIDE = 10_000  # a copy's operation and call ids: the template's plus n * stride


def setup_django(database_url: str, *, broker: str | None = None) -> None:
    """Django in this process; without ``broker`` tasks run eagerly (the template is
    analyzed in-process either way)."""
    os.environ.update(DATABASE_URL=database_url, DEBUG="0", LOG_LEVEL="WARNING",
                      SECRET_KEY=secrets.token_urlsafe(50),
                      # Django's test client, over plain HTTP
                      ALLOWED_HOSTS="testserver,127.0.0.1", SECURE_SSL_REDIRECT="0",
                      SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0")
    os.environ.pop("CELERY_BROKER_URL", None)
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def template_session(started: datetime):
    """One session of the month, stored and analyzed the way ingest and analysis do."""
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.analyze import analyze_session
    from metrics.models import Project
    from tests.factories import big_payload

    payload = big_payload("month-0", operations=OPERATIONS, api_calls=CALLS)
    payload["session"]["started_at"] = started.isoformat()
    stored = store_payload(Project.objects.get(slug="default"),
                           SessionPayload.model_validate(payload))
    analyze_session(stored.session)
    stored.session.refresh_from_db()
    return stored.session


def copy_month(template_pk: int, first_pk: int) -> None:
    """SESSIONS - 1 copies of the template session, keys from ``first_pk`` (a month's)."""
    from django.db import connection, transaction

    from metrics.models import ApiCall, Operation, Session

    def columns(model, *, skip=()):
        return [f.column for f in model._meta.concrete_fields if f.column not in skip]

    session_cols = columns(Session, skip=("id", "external_id"))
    op_cols = columns(Operation, skip=("id", "session_id", "parent_id"))
    call_cols = columns(ApiCall, skip=("id", "session_id", "operation_id"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO metrics_session (id, external_id, {', '.join(session_cols)}) "
            f"SELECT %s + n, 'month-' || n, {', '.join(session_cols)} "
            "FROM metrics_session, generate_series(1, %s) n WHERE id = %s",
            [first_pk, SESSIONS - 1, template_pk])
        for table, cols, link in (("metrics_operation", op_cols, "parent_id"),
                                  ("metrics_apicall", call_cols, "operation_id")):
            cursor.execute(
                f"INSERT INTO {table} (id, session_id, {link}, {', '.join(cols)}) "
                f"SELECT id + n * {ID_STRIDE}, %s + n, {link} + n * {ID_STRIDE}, "
                f"{', '.join(cols)} FROM {table}, generate_series(1, %s) n "
                "WHERE session_id = %s",
                [first_pk, SESSIONS - 1, template_pk])
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def sequence_name() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('metrics_session', 'id')")
        return cursor.fetchone()[0]


def build_month(started: datetime) -> int:
    """Delete any earlier month and build it again; returns its rows (operations)."""
    from django.db import connection

    from metrics import partitions
    from metrics.models import Operation, Session

    Session.objects.filter(external_id__startswith="month-").delete()
    # Keys far below this month's block: the rows land in the partition of the sessions
    # from before partitioning, which stands for a past month here.
    sequence = sequence_name()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
        last_value, is_called = cursor.fetchone()
        cursor.execute("SELECT setval(%s::regclass, %s, false)", [sequence, FIRST_KEY])
    template = template_session(started)
    with connection.cursor() as cursor:  # the keys back where ingest left them
        cursor.execute("SELECT setval(%s::regclass, %s, %s)", [sequence, last_value, is_called])
    assert template.pk == FIRST_KEY
    copy_month(template.pk, template.pk)
    partitions.maintain_partitions()  # this month's and the coming months' partitions
    return Operation.objects.filter(session__external_id__startswith="month-").count()


class Load:
    """Clients posting small sessions without pause; each request's start and latency."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.samples: list[tuple[float, float, bool]] = []  # (start, seconds, ok)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counter = 0

    def body(self) -> bytes:
        from tests.factories import big_payload

        with self.lock:
            self.counter += 1
            n = self.counter
        payload = big_payload(f"load-{time.time_ns()}-{n}", operations=LOAD_OPERATIONS,
                              api_calls=20)
        return gzip.compress(json.dumps(payload).encode(), 5)

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        deadline = time.monotonic() + MAX_LOAD_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            body = self.body()
            began = time.monotonic()
            try:
                conn.request("POST", "/api/v1/sessions", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.samples.append((began, time.monotonic() - began, ok))

    def __enter__(self) -> "Load":
        self.threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def window(self, low: float, high: float) -> list[tuple[float, bool]]:
        """Requests that were in flight at some moment of [low, high]."""
        return [(seconds, ok) for began, seconds, ok in self.samples
                if began <= high and began + seconds >= low]


def ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def prune_under_load(port: int, key: str, now: datetime) -> dict:
    from metrics import retention

    with Load(port, key) as load:
        time.sleep(WARM_UP_S + BEFORE_S)
        began = time.monotonic()
        result = retention.prune(now=now, progress=lambda line: print(line, flush=True))
        ended = time.monotonic()
        time.sleep(AFTER_S)
    before = [s for s, _ in load.window(began - BEFORE_S, began - 0.5)]
    during = load.window(began, ended)
    latencies = [s for s, _ in during]
    return {
        "prune_s": round(ended - began, 2),
        "operations_removed": result.operations,
        "api_calls_removed": result.api_calls,
        "sessions_pruned": result.sessions,
        "requests_during": len(during),
        "failures_during": sum(1 for _, ok in during if not ok),
        "failures_all": sum(1 for _, _, ok in load.samples if not ok),
        "p50_ms_during": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms_during": ms(latencies, 0.99),
        "p99_ms_before": ms(before, 0.99),
    }


def main() -> None:
    database_url = recreate_database(PG, DB_NAME)
    setup_django(database_url)
    from django.core.management import call_command

    from metrics import partitions
    from metrics.models import Session

    call_command("migrate", verbosity=0)
    env = server_env(database_url, CELERY_BROKER_URL=REDIS, INGEST_RATE_LIMIT_PER_MINUTE="0")
    key = create_api_key(env, "bench")
    now = datetime.now(UTC)
    started = now - timedelta(days=120)
    results = {}
    server = Gunicorn(env, workers=2).start()
    try:
        for mode in ("drop", "batched"):
            began = time.monotonic()
            rows = build_month(started)
            print(f"{mode}: built a month of {rows:,} operations in "
                  f"{time.monotonic() - began:.0f} s", flush=True)
            if mode == "batched":
                Session.objects.filter(external_id="month-7").update(is_pinned=True)
            results[mode] = {"operations_in_month": rows, **prune_under_load(server.port, key, now)}
            results[mode]["partitions_after"] = [
                p.name for p in partitions.partitions("metrics_operation")]
            print(json.dumps(results[mode]), flush=True)
    finally:
        server.stop()
        subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                       cwd=ROOT, env=env, capture_output=True, timeout=60)
    kept_answering = all(r["failures_all"] == 0 and r["requests_during"] > 0
                         for r in results.values())
    print(json.dumps({"sessions": SESSIONS, "operations_per_session": OPERATIONS,
                      "api_calls_per_session": CALLS, **results,
                      "batched_over_drop_s": round(
                          results["batched"]["prune_s"] / max(results["drop"]["prune_s"], 1e-3),
                          1),
                      "ingest_kept_answering": kept_answering}))


if __name__ == "__main__":
    main()
