"""E-mail channels through Django's e-mail backend (locmem in tests)."""

import pytest

from metrics.alerts.models import AlertDelivery, EventKind
from tests.alerts.conftest import BASE_URL, channel_to, rule_for
from tests.factories import api_call, session_payload

pytestmark = pytest.mark.django_db


def test_a_failed_run_is_mailed_to_each_address_once(project, ingest, reanalyze, mailoutbox):
    channel, _ = channel_to(project, kind="email", name="producers",
                            addresses="producer@example.test, lead@example.test")
    rule_for(project, channel, events=[EventKind.SESSION_FAILED])
    session = ingest(session_payload("ep002_run3", episode="ep002", status="failed",
                                     duration_s=84.0, api_calls=[api_call("c1", cost_usd=0.02)]))
    reanalyze(session)

    [mail] = mailoutbox
    assert mail.to == ["producer@example.test", "lead@example.test"]
    summary = "ep002 take 1 failed after 84.0 s: 0 of 1 API calls failed, cost so far $0.02"
    assert mail.subject == f"[perfmon] {summary}"
    assert mail.body == f"{summary}\n{BASE_URL}/sessions/ep002_run3/"
    assert AlertDelivery.objects.get().status == "sent"


def test_an_email_channel_needs_an_address(project):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError, match="needs an address"):
        channel_to(project, kind="email", addresses=" , ")


def test_a_line_break_from_the_wire_does_not_break_the_subject(project, mailoutbox,
                                                              after_commit):
    from django.utils import timezone

    from metrics.alerts import recording
    from metrics.alerts.models import AlertEvent
    from metrics.alerts.tasks import send_due
    channel, _ = channel_to(project, kind="email", name="producers",
                            addresses="producer@example.test")
    rule = rule_for(project, channel, events=[EventKind.REGRESSION])
    # An operation name as the generator sent it, line break included.
    event = AlertEvent.objects.create(rule=rule, kind=EventKind.REGRESSION, key="session:1",
                                      summary="ep001 take 1 regressed: dialogue\nline took 9 s",
                                      occurred_at=timezone.now())
    recording.attach(rule, channel, event, now=timezone.now())
    after_commit(send_due)

    [mail] = mailoutbox
    assert mail.subject == "[perfmon] ep001 take 1 regressed: dialogue line took 9 s"
    assert AlertDelivery.objects.get().status == "sent"
