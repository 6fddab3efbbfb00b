"""What a merge into a big stored session spends on its totals: the recount ingest did
before (every call and operation of the session read) against the move it does now (only
the merged calls read, before and after the write), in the same run on the same session.

Builds one running session of SESSION_OPERATIONS operations and a call per 5 operations
through ``ingest.services.store_payload`` (parts of 5,000 operations), on a scratch
PostgreSQL database. Then PARTS times: merges a new part of 1,000 operations and 50 calls
(timing the whole ``store_payload``), and on the session as it now stands times the old
recount's reads (the aggregate of the session's calls and the count of its operations that
``refresh_session_totals`` made, plus the aggregate of the calls' cache tokens the cap
check made) and the new move (``call_totals_of`` the part's calls twice, as a merge
reads them). Prints one JSON object on its last line: the medians in ms and recount / move.

Needs PostgreSQL on loopback (BENCH_PG); tasks are queued to Redis (BENCH_REDIS) and
purged, not run.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial

import prune

DB_NAME = "perfmon_bench_merge_totals"
SESSION_OPERATIONS = int(os.environ.get("BENCH_SESSION_OPERATIONS", "200000"))
BUILD_PART = 5000
# The totals the session's recount aggregated before the cache sums joined them.
OLD_TOTALS = ("api_calls_count", "api_errors_count", "prompt_tokens", "completion_tokens",
              "total_tokens", "cost_usd")
PARTS = int(os.environ.get("BENCH_PARTS", "15"))


def part(session_id: str, first: int, operations: int, calls: int) -> dict:
    from tests.factories import api_call, operation, session_payload

    ops = [operation(f"o{i}", "dialogue_line", start_s=i * 0.5, duration_s=0.4,
                     metadata={"line": i}) for i in range(first, first + operations)]
    api_calls = [api_call(f"c{i}", operation_id=f"o{i}", at_s=i * 0.5)
                 for i in range(first, first + operations, operations // calls)]
    return session_payload(session_id, status="running", duration_s=None, operations=ops,
                           api_calls=api_calls)


def timed_ms(function) -> float:
    began = time.perf_counter()
    function()
    return (time.perf_counter() - began) * 1000


def main() -> None:
    database_url = prune.recreate_database(prune.PG, DB_NAME)
    prune.setup_django(database_url, broker=prune.REDIS)
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Sum

    from ingest.bulk import IN_CHUNK
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.totals import CALL_TOTALS, call_totals_of
    from metrics.models import ApiCall, Operation, Project, Session

    call_command("migrate", verbosity=0)
    project, _ = Project.objects.get_or_create(slug="default", defaults={"name": "Default"})

    def store(first: int, operations: int, calls: int) -> None:
        store_payload(project, SessionPayload.model_validate(
            part("big", first, operations, calls)))

    began = time.perf_counter()
    for first in range(0, SESSION_OPERATIONS, BUILD_PART):
        store(first, BUILD_PART, BUILD_PART // 5)
    print(f"built {SESSION_OPERATIONS:,} operations in {time.perf_counter() - began:.1f} s",
          flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    def recount(session: Session) -> None:
        """The reads a merge made before: the session's calls aggregated for its totals,
        its operations counted, its calls' cache tokens summed for the caps. Reads only,
        as ``move`` is (the save that follows either is the same)."""
        calls = ApiCall.objects.filter(session=session)
        calls.aggregate(**{name: CALL_TOTALS[name] for name in OLD_TOTALS})
        Operation.objects.filter(session=session).count()
        calls.aggregate(Sum("cached_tokens"), Sum("cache_write_tokens"))

    def move(session: Session, call_ids: list[str]) -> None:
        for _ in range(2):  # before and after the write
            call_totals_of(session, call_ids, chunk=IN_CHUNK)

    merges, recounts, moves = [], [], []
    first = SESSION_OPERATIONS
    for _ in range(PARTS):
        merges.append(timed_ms(partial(store, first, 1000, 50)))
        session = Session.objects.get(external_id="big")
        call_ids = [f"c{i}" for i in range(first, first + 1000, 20)]
        with transaction.atomic():  # as in a merge: under the session's row lock
            Session.objects.select_for_update().get(pk=session.pk)
            recounts.append(timed_ms(partial(recount, session)))
            moves.append(timed_ms(partial(move, session, call_ids)))
        first += 1000
    subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                   cwd=prune.ROOT, capture_output=True, timeout=60)
    session = Session.objects.get(external_id="big")
    result = {
        "session_operations": session.operations_count,
        "session_api_calls": session.api_calls_count,
        "part": {"operations": 1000, "api_calls": 50},
        "parts": PARTS,
        "median_ms": {"merge_now": round(statistics.median(merges), 2),
                      "recount_before": round(statistics.median(recounts), 2),
                      "move_now": round(statistics.median(moves), 2)},
        "recount_over_move": round(statistics.median(recounts) / statistics.median(moves), 1),
        "recount_share_of_merge": round(
            statistics.median(recounts) / statistics.median(merges), 3),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
