"""A burst of events: the first goes at once, the rest wait out the cooldown together."""

import pytest

from metrics.alerts.models import AlertDelivery, EventKind
from metrics.alerts.tasks import send_due
from tests.alerts.conftest import channel_to, rule_for, time_passes
from tests.factories import api_call, session_payload

pytestmark = pytest.mark.django_db


def failed(session_id: str) -> dict:
    return session_payload(session_id, episode=session_id[:5], status="failed",
                           api_calls=[api_call("c1", cost_usd=0.01)])


@pytest.fixture
def ten_minute_rule(project, receiver):
    channel, _ = channel_to(project, receiver.url)
    return rule_for(project, channel, events=[EventKind.SESSION_FAILED], cooldown_minutes=10)


def test_events_within_the_cooldown_go_out_as_one_message(ten_minute_rule, receiver, ingest,
                                                          after_commit):
    ingest(failed("ep001_run1"))
    ingest(failed("ep002_run1"))
    ingest(failed("ep003_run1"))

    assert len(receiver.requests) == 1  # the first, at once
    first, waiting = AlertDelivery.objects.order_by("pk")
    assert waiting.status == "pending"
    assert (waiting.not_before - first.not_before).total_seconds() == 600
    assert waiting.events.count() == 2

    after_commit(send_due)
    assert len(receiver.requests) == 1  # not before the cooldown is over

    time_passes(600)
    after_commit(send_due)

    assert len(receiver.requests) == 2
    grouped = receiver.bodies()[1]
    assert [e["session"] for e in grouped["events"]] == ["ep002_run1", "ep003_run1"]
    assert grouped["text"].splitlines()[0] == "2 alerts from rule night watch:"
    assert grouped["text"].count("https://perfmon.example.test/sessions/") == 2
    waiting.refresh_from_db()
    assert waiting.status == "sent"


def test_after_a_quiet_spell_the_next_event_goes_at_once(ten_minute_rule, receiver, ingest):
    ingest(failed("ep001_run1"))
    time_passes(601)  # the first message's cooldown is over
    ingest(failed("ep002_run1"))

    assert len(receiver.requests) == 2
    assert AlertDelivery.objects.filter(status="sent").count() == 2


def test_events_of_one_analysis_share_one_message(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel)  # budgets, regressions and failures
    # 3 of 3 calls failed: the default "API error rate under 5%" budget fails too.
    ingest(session_payload("ep009_run1", episode="ep009", status="failed", api_calls=[
        api_call(f"c{n}", error=True, cost_usd=0.01, at_s=n) for n in range(3)]))

    [message] = receiver.bodies()
    assert [e["kind"] for e in message["events"]] == ["budget_failed", "session_failed"]
    assert message["events"][0]["summary"] == (
        "ep009 take 1 API error rate 100.0%, budget at most 5.0%")
