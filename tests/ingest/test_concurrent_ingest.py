"""Concurrent clients sending the same session end with one session and every row once.

Runs against real PostgreSQL through the live test server: each request thread has its
own database connection, so the transactions genuinely race.
"""

import json
import threading
import urllib.error
import urllib.request

import pytest

from metrics.models import ApiCall, Operation, Session
from tests.factories import big_payload, operation, session_payload

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
