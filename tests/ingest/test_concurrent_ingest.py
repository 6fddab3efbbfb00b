"""Concurrent clients sending the same session end with one session and every row once.

Runs against real PostgreSQL through the live test server: each request thread has its
own database connection, so the transactions genuinely race.
"""

import json
import threading
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.db import connection, transaction

from metrics.deletion import delete_sessions
from metrics.models import ApiCall, Episode, Operation, Session
from tests.factories import T0, api_call, big_payload, operation, session_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 8


def post_all_at_once(url: str, key: str, payloads: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = [0] * len(payloads)

    def send(index: int) -> None:
        request = urllib.request.Request(
            f"{url}/api/v1/sessions", data=json.dumps(payloads[index]).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        barrier.wait(timeout=10)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses[index] = response.status
        except urllib.error.HTTPError as exc:
            statuses[index] = exc.code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_same_new_session_sent_by_many_clients_at_once_is_stored_once(live_server, api_key):
    payload = big_payload("ep001_run1", operations=1000, api_calls=50)

    statuses = post_all_at_once(live_server.url, api_key[1], [payload] * CLIENTS)

    assert sorted(statuses) == [200] * (CLIENTS - 1) + [201]
    session = Session.objects.get()
    assert Operation.objects.filter(session=session).count() == 1000
    assert ApiCall.objects.filter(session=session).count() == 50
    assert session.operations_count == 1000
    assert session.api_calls_count == 50
    assert session.total_tokens == 50 * 830


def test_runs_of_one_episode_stored_at_once_leave_it_its_latest_runs(live_server, api_key):
    # Each refreshes the episode after its own commit, under the episode's row lock.
    starts = [T0 + timedelta(minutes=i) for i in range(CLIENTS)]
    payloads = [session_payload(f"ep001_run{i}", started_at=start,
                                status="failed" if i == CLIENTS - 1 else "completed")
                for i, start in enumerate(starts)]

    statuses = post_all_at_once(live_server.url, api_key[1], payloads)

    assert statuses == [201] * CLIENTS
    episode = Episode.objects.get(code="ep001")
    assert episode.latest_run_at == starts[-1]
    assert episode.latest_completed_session.external_id == f"ep001_run{CLIENTS - 2}"


def test_parts_of_one_running_session_sent_at_once_all_arrive(live_server, api_key):
    parts = [
        session_payload(
            "ep001_run1", status="running", duration_s=None,
            operations=[operation(f"p{part}-{n}", "dialogue_line", start_s=part * 100 + n,
                                  duration_s=0.5) for n in range(100)],
        )
        for part in range(CLIENTS)
    ]

    statuses = post_all_at_once(live_server.url, api_key[1], parts)

    assert sorted(statuses) == [200] * (CLIENTS - 1) + [201]
    assert Session.objects.count() == 1
    assert Operation.objects.count() == CLIENTS * 100
    assert Session.objects.get().operations_count == CLIENTS * 100


def _store(project, payload: dict):
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload

    return store_payload(project, SessionPayload.model_validate(payload))


def _new_rows(session_id: str, prefix: str) -> dict:
    return session_payload(
        session_id, operations=[operation(f"{prefix}{i}", "dialogue", start_s=i, duration_s=1)
                                for i in range(20)],
        api_calls=[api_call(f"{prefix}c", operation_id=f"{prefix}0")])


def _in_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _second_waits_on_the_first(first, second) -> list[BaseException]:
    """Run ``first`` in a transaction held open, start ``second`` and see it wait on the
    first's locks, then let the first commit; what either of them raised."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            first()
            inside.set()
            release.wait(timeout=10)

    holder, first_errors = _in_thread(hold)
    assert inside.wait(timeout=10)
    waiter, second_errors = _in_thread(second)
    waiter.join(timeout=1)
    assert waiter.is_alive()  # waiting on the first's lock
    release.set()
    holder.join(timeout=30)
    waiter.join(timeout=30)
    return first_errors + second_errors


def _delete_s() -> None:
    delete_sessions(Session.objects.filter(external_id="s"))


def test_a_session_deleted_while_a_merge_is_in_flight_takes_the_merged_rows_with_it(project):
    # The raw rows have no database constraint on their session: the session's row lock
    # is what keeps a merge's rows from outliving a deletion.
    _store(project, big_payload("s", operations=10, api_calls=2))

    errors = _second_waits_on_the_first(lambda: _store(project, _new_rows("s", "n")), _delete_s)

    assert errors == []
    assert not Session.objects.exists()
    assert (Operation.objects.count(), ApiCall.objects.count()) == (0, 0)


def test_a_merge_that_waits_on_a_deletion_stores_the_session_anew(project):
    _store(project, big_payload("s", operations=10, api_calls=2))

    errors = _second_waits_on_the_first(_delete_s, lambda: _store(project, _new_rows("s", "n")))

    assert errors == []
    session = Session.objects.get()
    assert (session.operations_count, session.api_calls_count) == (20, 1)
    assert Operation.objects.filter(session=session).count() == Operation.objects.count() == 20
    assert ApiCall.objects.filter(session=session).count() == ApiCall.objects.count() == 1
