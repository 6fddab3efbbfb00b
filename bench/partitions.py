"""What partitioning the raw tables costs or saves: ingest and page times, plain against
partitioned, in the same run on the same rows (PostgreSQL).

Builds one month of 500 analyzed sessions of 2,000 operations and 400 calls (as
``bench/prune.py`` does: 1M operations, 200k calls) on a database migrated up to the plain
tables, then alternates ROUNDS times: time ingest and the pages on plain tables, migrate to
the partitioned ones (the migration under test), time them again, migrate back. Ingest is
``store_payload`` of new 1,000-operation sessions in-process (the service the API calls; no
HTTP, so the difference is the database's); pages are requested with Django's test client
as a logged-in producer, each once to warm up and then timed. Prints one JSON object on its
last line: per layout the median ms of each, and partitioned over plain.
"""

import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import prune

DB_NAME = "perfmon_bench_partitions"
ROUNDS = 2
INGEST_SESSIONS = 15  # per round and layout
PAGE_REPEATS = 7
PLAIN = ("metrics", "0020_cost_write_1h")


# Columns added after PLAIN, which today's ingest and analysis write: on the plain layout
# they are added by hand (with the daily cost rollup's key that takes in its release), so
# that only the raw tables' layout differs between the two.
LATER_FIELDS = (("Session", "cached_tokens"), ("Session", "cache_write_tokens"),
                ("Session", "rollup_release"), ("DailyCost", "release"))


def migrate(target=None) -> float:
    from django.core.management import call_command

    began = time.perf_counter()
    call_command("migrate", *(target or ()), verbosity=0)
    return time.perf_counter() - began


def later_fields(*, add: bool) -> None:
    from django.apps import apps
    from django.db import connection, models

    from metrics.models import DailyCost

    key = DailyCost._meta.constraints[0]
    plain_key = models.UniqueConstraint(
        fields=[f for f in key.fields if f != "release"], name=key.name)
    with connection.schema_editor() as editor:
        editor.remove_constraint(DailyCost, plain_key if add else key)
        for model_name, name in LATER_FIELDS:
            model = apps.get_model("metrics", model_name)
            field = model._meta.get_field(name)
            (editor.add_field if add else editor.remove_field)(model, field)
        editor.add_constraint(DailyCost, key if add else plain_key)


def to_plain() -> None:
    migrate(PLAIN)
    later_fields(add=True)


def to_partitioned() -> float:
    """Seconds the migrations from PLAIN to the latest took (0021's partitioning, and the
    small ones after it)."""
    later_fields(add=False)
    return migrate()


def time_ingest(tag: str) -> list[float]:
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.models import Project
    from tests.factories import big_payload

    project = Project.objects.get(slug="default")
    times = []
    for n in range(INGEST_SESSIONS):
        payload = SessionPayload.model_validate(
            big_payload(f"ingest-{tag}-{n}", operations=1000, api_calls=50))
        began = time.perf_counter()
        store_payload(project, payload)
        times.append((time.perf_counter() - began) * 1000)
    return times


def time_pages(client, urls: dict[str, str]) -> dict[str, list[float]]:
    times = {}
    for page, url in urls.items():
        client.get(url)
        for _ in range(PAGE_REPEATS):
            began = time.perf_counter()
            response = client.get(url)
            times.setdefault(page, []).append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    return times


def main() -> None:
    from dashboard import logged_in_client

    database_url = prune.recreate_database(prune.PG, DB_NAME)
    # Ingest queues the analyses (no worker runs them; the queue is purged after).
    prune.setup_django(database_url, broker=prune.REDIS)
    migrate()  # every app
    to_plain()
    rows = prune.build_month(datetime.now(UTC) - timedelta(days=120))
    client = logged_in_client()
    urls = {
        "session": "/sessions/month-7/",
        "operations": "/operations/?name=dialogue_line&period=all",
        "overview": "/?period=all",
        "costs": "/costs/?period=all",
    }
    samples = {layout: {"ingest": []} for layout in ("plain", "partitioned")}
    migrations_s = []
    for round_ in range(ROUNDS):
        for layout in ("plain", "partitioned"):
            if layout == "partitioned":
                migrations_s.append(round(to_partitioned(), 1))
            samples[layout]["ingest"] += time_ingest(f"{round_}-{layout}")
            for page, values in time_pages(client, urls).items():
                samples[layout].setdefault(page, []).extend(values)
            print(layout, {k: round(statistics.median(v), 1)
                           for k, v in samples[layout].items()}, flush=True)
        to_plain()
    subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                   cwd=prune.ROOT, capture_output=True, timeout=60)
    medians = {layout: {k: round(statistics.median(v), 1) for k, v in by.items()}
               for layout, by in samples.items()}
    print(json.dumps({
        "operations": rows, "rounds": ROUNDS, "median_ms": medians,
        "partitioned_over_plain": {k: round(medians["partitioned"][k] / medians["plain"][k], 2)
                                   for k in medians["plain"]},
        "migration_to_partitioned_s": migrations_s,
    }))


if __name__ == "__main__":
    main()
