"""The signed webhook against real receivers on 127.0.0.1: what arrives, how often, and
what happens when the receiver fails, hangs or redirects."""

import hashlib
import hmac
import time

import pytest

from metrics.alerts import sending, signing
from metrics.alerts.message import slack_text
from metrics.alerts.models import AlertDelivery, AlertEvent
from metrics.alerts.tasks import send_due
from tests.alerts.conftest import BASE_URL, HANG, channel_to, rule_for, time_passes
from tests.factories import api_call, session_payload

pytestmark = pytest.mark.django_db


def failed_run(session_id: str = "ep002_run3", **fields):
    """A failed run within the default budgets: 1 error in 21 calls is under 5%."""
    calls = [api_call("c0", cost_usd=0.02, error=True)] + [
        api_call(f"c{n}", cost_usd=0.0, at_s=n) for n in range(1, 21)]
    return session_payload(session_id, episode="ep002", status="failed", duration_s=84.0,
                           api_calls=calls, **fields)


def only_delivery() -> AlertDelivery:
    [delivery] = AlertDelivery.objects.all()
    return delivery


def test_a_failed_run_posts_one_signed_message_a_receiver_can_verify(hook, receiver, ingest):
    _, secret = hook
    before = int(time.time())
    ingest(failed_run())

    [(headers, body)] = receiver.requests
    timestamp = int(headers[signing.TIMESTAMP_HEADER])
    # The receiver's side, by hand: HMAC-SHA256 over "<timestamp>.<raw body>".
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert headers[signing.SIGNATURE_HEADER] == f"v1={expected}"
    assert before <= timestamp <= time.time()
    assert signing.verify(secret, headers, body)
    assert not signing.verify(secret, headers, body + b" ")
    assert not signing.verify("whsec_another", headers, body)
    assert headers["Content-Type"] == "application/json"

    [message] = receiver.bodies()
    [event] = message["events"]
    assert event["kind"] == "session_failed"
    assert event["summary"] == ("ep002 take 1 failed after 84.0 s: 1 of 21 API calls failed, "
                                "cost so far $0.02")
    assert event["url"] == f"{BASE_URL}/sessions/ep002_run3/"
    assert message["text"] == f"{event['summary']}\n{event['url']}"
    delivery = only_delivery()
    assert headers[signing.DELIVERY_HEADER] == str(delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("sent", 1, 200)
    assert delivery.sent_at is not None


def test_an_old_timestamp_does_not_verify(hook, receiver, ingest):
    _, secret = hook
    ingest(failed_run())
    [(headers, body)] = receiver.requests

    assert not signing.verify(secret, headers, body, now=time.time() + 301)


def test_re_analysis_and_resend_do_not_alert_again(hook, receiver, ingest, reanalyze):
    session = ingest(failed_run())
    reanalyze(session)
    ingest(failed_run())  # the generator sends the same session again

    assert len(receiver.requests) == 1
    assert AlertEvent.objects.count() == 1
    assert AlertDelivery.objects.count() == 1


def test_a_completed_run_within_its_budgets_sends_nothing(hook, receiver, ingest):
    ingest(session_payload("ep001_run1", api_calls=[api_call("c1", cost_usd=0.01)]))

    assert receiver.requests == []
    assert AlertDelivery.objects.count() == 0


def test_a_500_then_200_is_retried_and_counted(project, make_receiver, ingest, after_commit):
    flaky = make_receiver(500, 200)
    channel, _ = channel_to(project, flaky.url)
    rule_for(project, channel)
    ingest(failed_run())

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("retrying", 1, 500)
    assert "HTTP 500" in delivery.last_error

    time_passes(60)
    after_commit(send_due)  # what the periodic check (or the next analysis) does

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("sent", 2, 200)
    assert delivery.last_error == ""
    assert len(flaky.requests) == 2
    # The same message both times: a receiver can de-duplicate on the delivery header.
    assert {h[signing.DELIVERY_HEADER] for h, _ in flaky.requests} == {str(delivery.pk)}


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_a_4xx_is_not_retried(project, make_receiver, ingest, after_commit, status):
    refusing = make_receiver(status)
    channel, _ = channel_to(project, refusing.url)
    rule_for(project, channel)
    ingest(failed_run())
    time_passes(3600)
    after_commit(send_due)

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 1, status)
    assert len(refusing.requests) == 1


def test_a_receiver_that_never_answers_times_out_and_is_given_up_after_the_attempts(
        project, make_receiver, ingest, after_commit, settings):
    silent = make_receiver(HANG)
    channel, _ = channel_to(project, silent.url)
    rule_for(project, channel)
    ingest(failed_run())

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("retrying", 1, None)
    assert "timed out" in delivery.last_error
    for _ in range(settings.ALERT_MAX_ATTEMPTS):  # bounded: more rounds than attempts left
        time_passes(3600)
        after_commit(send_due)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", settings.ALERT_MAX_ATTEMPTS)
    assert len(silent.requests) == settings.ALERT_MAX_ATTEMPTS


def test_a_redirect_is_not_followed(project, make_receiver, ingest, after_commit):
    elsewhere = make_receiver(200)
    redirecting = make_receiver(("redirect", elsewhere.url))
    channel, _ = channel_to(project, redirecting.url)
    rule_for(project, channel)
    ingest(failed_run())
    time_passes(3600)
    after_commit(send_due)

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 1, 302)
    assert "not followed" in delivery.last_error
    assert elsewhere.requests == []
    assert len(redirecting.requests) == 1


def test_an_unreachable_receiver_is_a_network_error_and_retried(project, ingest, make_receiver):
    gone = make_receiver(200)
    url = gone.url
    gone.stop()  # nothing listens on that port any more
    channel, _ = channel_to(project, url)
    rule_for(project, channel)
    ingest(failed_run())

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.last_error.startswith("network error")


def test_the_wait_between_attempts_doubles_up_to_the_cap(settings):
    settings.ALERT_RETRY_BACKOFF_S = 30
    settings.ALERT_RETRY_MAX_BACKOFF_S = 100

    assert [sending.backoff_s(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_slack_gets_text_with_the_session_link(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url, kind="slack", name="slack")
    rule_for(project, channel)
    ingest(failed_run())

    [message] = receiver.bodies()
    assert message == {"text": (
        "ep002 take 1 failed after 84.0 s: 1 of 21 API calls failed, cost so far $0.02\n"
        f"{BASE_URL}/sessions/ep002_run3/")}


def test_slack_text_escapes_the_three_characters_slack_reads():
    assert slack_text("a <b> & c") == "a &lt;b&gt; &amp; c"


def test_a_rule_limited_to_another_workflow_stays_quiet(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel, workflow="dubbing")
    rule_for(project, channel, name="staging only", environment="staging")
    ingest(failed_run())  # workflow script_generation, environment test

    assert receiver.requests == []


def test_a_secret_under_a_changed_key_fails_the_delivery_and_says_why(
        hook, receiver, ingest, settings):
    settings.ALERT_SECRETS_KEY = "a key rotated since the channel was made"
    ingest(failed_run())

    delivery = only_delivery()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "rotate the channel's secret" in delivery.last_error
    assert receiver.requests == []  # never sent unsigned
