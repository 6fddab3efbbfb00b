"""On PostgreSQL, sessions arriving at once through the live server: each failure is one
event, and the burst shares deliveries under the cooldown instead of racing into many."""

import pytest

from metrics.alerts.models import AlertDelivery, AlertEvent, EventKind
from tests.alerts.conftest import channel_to, rule_for
from tests.factories import api_call, session_payload
from tests.ingest.test_concurrent_ingest import post_all_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 6


def failed(session_id: str) -> dict:
    return session_payload(session_id, episode=session_id[:5], status="failed",
                           api_calls=[api_call("c1", cost_usd=0.01)])


@pytest.fixture
def ten_minute_rule(project, receiver):
    channel, _ = channel_to(project, receiver.url)
    return rule_for(project, channel, events=[EventKind.SESSION_FAILED], cooldown_minutes=10)


def test_failures_sent_at_once_make_one_message_then_one_grouped(
        live_server, api_key, ten_minute_rule, receiver):
    payloads = [failed(f"ep{n:03d}_run1") for n in range(CLIENTS)]

    statuses = post_all_at_once(live_server.url, api_key[1], payloads)

    assert statuses == [201] * CLIENTS
    assert AlertEvent.objects.count() == CLIENTS
    sent, waiting = AlertDelivery.objects.order_by("not_before")
    assert sent.status == "sent" and sent.events.count() == 1
    assert waiting.status == "pending" and waiting.events.count() == CLIENTS - 1
    assert len(receiver.requests) == 1


def test_one_failure_sent_by_many_clients_alerts_once(live_server, api_key, ten_minute_rule,
                                                      receiver):
    statuses = post_all_at_once(live_server.url, api_key[1], [failed("ep001_run1")] * CLIENTS)

    assert sorted(statuses) == [200] * (CLIENTS - 1) + [201]
    assert AlertEvent.objects.count() == 1
    assert AlertDelivery.objects.count() == 1
    assert len(receiver.requests) == 1
