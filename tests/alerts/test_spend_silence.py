"""Spend in a rolling window, the month's burn rate, and a workflow gone quiet, each checked
against figures worked out by hand."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metrics.alerts import recording
from metrics.alerts.models import AlertEvent, EventKind
from metrics.alerts.tasks import check_alerts
from tests.alerts.conftest import BASE_URL, channel_to, rule_for
from tests.factories import T0, api_call, iso, session_payload

pytestmark = pytest.mark.django_db


def spend_rule(project, receiver, **limits):
    channel, _ = channel_to(project, receiver.url)
    return rule_for(project, channel, events=[EventKind.SPEND], **limits)


def calls_at(session_id: str, started: datetime, *costs_at: tuple[float | None, datetime],
             **fields) -> dict:
    calls = [api_call(f"c{n}", cost_usd=cost, at=iso(at),
                      model="gpt-4o-mini" if cost is not None else "house-unpriced")
             for n, (cost, at) in enumerate(costs_at)]
    return session_payload(session_id, started_at=started, duration_s=60.0, api_calls=calls,
                           **fields)


@pytest.fixture
def a_days_calls(ingest, other_api):
    """Calls of $30 at T0+5h, $20 at T0+7h, $31 and one unpriced at T0+29h; another
    project's $100 at T0+29h."""
    ingest(calls_at("s1", T0, (30.0, T0 + timedelta(hours=5)), (20.0, T0 + timedelta(hours=7))))
    ingest(calls_at("s2", T0 + timedelta(hours=28), (31.0, T0 + timedelta(hours=29)),
                    (None, T0 + timedelta(hours=29))))
    answer = other_api.post("/sessions", calls_at("s9", T0, (100.0, T0 + timedelta(hours=29))))
    assert answer.status_code == 201


def events(kind: str) -> list[str]:
    return list(AlertEvent.objects.filter(kind=kind).order_by("pk")
                .values_list("summary", flat=True))


def test_spend_over_the_limit_in_the_last_24_hours(project, receiver, a_days_calls):
    spend_rule(project, receiver, spend_limit_usd=Decimal("50"))
    now = T0 + timedelta(hours=30)  # the $30 call, 25 h ago, is outside the window

    recording.record_periodic_events(now=now)

    # $20 + $31 = $51; (51 - 50) / 50 = 2 % over
    assert events("spend") == ["Spend in the last 24 h is $51.00, over the limit of $50.00: "
                               "2% over (plus 1 call with no price, not counted)"]
    assert AlertEvent.objects.get().url == f"{BASE_URL}/costs/"


def test_spend_under_the_limit_is_quiet(project, receiver, a_days_calls):
    spend_rule(project, receiver, spend_limit_usd=Decimal("51"))  # $51 is not over $51

    recording.record_periodic_events(now=T0 + timedelta(hours=30))

    assert events("spend") == []


def test_a_spell_over_the_limit_alerts_once_per_window(project, receiver, a_days_calls):
    spend_rule(project, receiver, spend_limit_usd=Decimal("50"))
    now = T0 + timedelta(hours=30)

    first = recording.record_periodic_events(now=now)
    again = recording.record_periodic_events(now=now + timedelta(hours=1))

    assert len(first) == 1 and again == []
    assert len(events("spend")) == 1


def test_a_longer_window_counts_the_earlier_call(project, receiver, a_days_calls):
    spend_rule(project, receiver, spend_limit_usd=Decimal("80"), spend_window_hours=48)

    recording.record_periodic_events(now=T0 + timedelta(hours=30))

    # $30 + $20 + $31 = $81 over $80: 1.25 %, shown rounded as 1 %
    assert events("spend") == ["Spend in the last 48 h is $81.00, over the limit of $80.00: "
                               "1% over (plus 1 call with no price, not counted)"]


@pytest.fixture
def a_months_calls(ingest):
    """$100 on 31 October, $10 on 2 November, $28 on 9 November."""
    for n, (cost, moment) in enumerate([
        (100.0, datetime(2026, 10, 31, 12, tzinfo=UTC)),
        (10.0, datetime(2026, 11, 2, 9, tzinfo=UTC)),
        (28.0, datetime(2026, 11, 9, 15, tzinfo=UTC)),
    ]):
        ingest(calls_at(f"m{n}", moment - timedelta(minutes=1), (cost, moment)))


def test_the_months_burn_rate_would_pass_the_limit(project, receiver, a_months_calls):
    spend_rule(project, receiver, monthly_limit_usd=Decimal("100"))

    recording.record_periodic_events(now=datetime(2026, 11, 10, 12, tzinfo=UTC))

    # $38 in 9.5 days of November's 30: 38 / 9.5 * 30 = $120.00 by the month's end
    assert events("spend") == ["Spend this month is $38.00 after 9.5 of 30 days; at this rate "
                               "it reaches $120.00 by the month's end, over the monthly limit "
                               "of $100.00"]


@pytest.mark.parametrize("environment, alerts", [("test", 1), ("staging", 0)])
def test_the_burn_rate_of_one_environment(project, receiver, a_months_calls, environment,
                                          alerts):
    spend_rule(project, receiver, monthly_limit_usd=Decimal("100"), environment=environment)

    recording.record_periodic_events(now=datetime(2026, 11, 10, 12, tzinfo=UTC))

    # the calls ran in environment "test": $120.00 projected there, nothing in staging
    assert len(events("spend")) == alerts
    assert all("reaches $120.00" in summary for summary in events("spend"))


def test_a_burn_rate_that_just_meets_the_limit_is_quiet(project, receiver, a_months_calls):
    spend_rule(project, receiver, monthly_limit_usd=Decimal("120"))

    recording.record_periodic_events(now=datetime(2026, 11, 10, 12, tzinfo=UTC))

    assert events("spend") == []


@pytest.fixture
def silence_rule(project, receiver):
    channel, _ = channel_to(project, receiver.url)
    return rule_for(project, channel, events=[EventKind.SILENCE], silence_after_hours=24)


def test_a_workflow_quiet_for_longer_than_expected(silence_rule, ingest):
    ingest(session_payload("ep001_run1", started_at=T0))

    assert recording.record_periodic_events(now=T0 + timedelta(hours=20)) == []
    recording.record_periodic_events(now=T0 + timedelta(hours=30))
    recording.record_periodic_events(now=T0 + timedelta(hours=31))  # still the same silence

    assert events("silence") == [
        "No session from workflow script_generation for 30.0 h (expected at least every "
        "24 h); the last, ep001 take 1, started 2026-11-20 10:00 UTC"]


def test_a_new_session_ends_the_silence_and_a_later_one_alerts_again(silence_rule, ingest):
    ingest(session_payload("ep001_run1", started_at=T0))
    recording.record_periodic_events(now=T0 + timedelta(hours=30))
    ingest(session_payload("ep002_run1", episode="ep002", started_at=T0 + timedelta(hours=32)))

    assert recording.record_periodic_events(now=T0 + timedelta(hours=33)) == []
    recording.record_periodic_events(now=T0 + timedelta(hours=57))

    assert len(events("silence")) == 2
    assert "the last, ep002 take 1, started 2026-11-21 18:00 UTC" in events("silence")[1]


def test_the_periodic_task_checks_and_sends(silence_rule, receiver, ingest, after_commit):
    ingest(session_payload("ep001_run1", started_at=timezone.now() - timedelta(hours=30)))

    after_commit(check_alerts)
    after_commit(check_alerts)

    [message] = receiver.bodies()
    assert message["events"][0]["kind"] == "silence"
    assert message["text"].startswith("No session from workflow script_generation for 30.0 h")
