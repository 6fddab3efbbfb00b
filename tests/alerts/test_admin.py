"""Rules and channels in the admin: Editors manage them, the secret is shown once, the test
message goes out, and the delivery log is read-only."""

import pytest
from django.contrib.messages import get_messages

from metrics.alerts import signing
from metrics.alerts.models import AlertChannel, AlertDelivery, AlertRule
from tests.admin.helpers import admin_url, logged_in, person
from tests.alerts.conftest import channel_to, rule_for
from tests.factories import session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(db):
    return logged_in(person("eddie", "Editors"))


@pytest.fixture
def producer(db):
    return logged_in(person("pat", "Producers"))


def channel_form(project, url: str, **overrides) -> dict:
    return {"project": project.pk, "name": "ops hook", "kind": "webhook", "url": url,
            "addresses": "", "active": "on", **overrides}


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_an_editor_adds_a_channel_and_sees_its_secret_once(editor, project, receiver):
    response = editor.post(admin_url("alertchannel", "add"),
                           channel_form(project, receiver.url), follow=True)

    channel = AlertChannel.objects.get()
    [shown] = [t for t in texts(response) if "shown only this once" in t]
    assert f"<code>{channel.secret}</code>" in shown
    assert channel.secret not in channel.secret_encrypted  # stored encrypted
    page = editor.get(admin_url("alertchannel", "change", channel.pk))
    assert channel.secret not in page.content.decode()
    assert receiver.requests == []  # nothing is fetched when a channel is configured


def test_a_channel_url_must_be_http(editor, project):
    response = editor.post(admin_url("alertchannel", "add"),
                           channel_form(project, "file:///etc/passwd"))

    assert "url" in response.context["adminform"].form.errors
    assert not AlertChannel.objects.exists()


def test_an_editor_adds_a_rule_with_its_events_and_channels(editor, project, receiver):
    channel, _ = channel_to(project, receiver.url)
    response = editor.post(admin_url("alertrule", "add"), {
        "project": project.pk, "name": "costs", "events": ["spend", "budget_failed"],
        "workflow": "", "environment": "", "spend_limit_usd": "50",
        "spend_window_hours": "24", "monthly_limit_usd": "", "silence_after_hours": "",
        "cooldown_minutes": "10", "channels": [channel.pk], "active": "on"})

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.events == ["spend", "budget_failed"]
    assert list(rule.channels.all()) == [channel]


def test_a_rule_cannot_use_another_projects_channel(editor, project, other_project, receiver):
    foreign, _ = channel_to(other_project, receiver.url, name="theirs")
    response = editor.post(admin_url("alertrule", "add"), {
        "project": project.pk, "name": "failures", "events": ["session_failed"],
        "spend_window_hours": "24", "cooldown_minutes": "10", "channels": [foreign.pk]})

    assert "channels" in response.context["adminform"].form.errors


def test_a_spend_rule_needs_a_limit(editor, project):
    response = editor.post(admin_url("alertrule", "add"), {
        "project": project.pk, "name": "costs", "events": ["spend"],
        "spend_window_hours": "24", "cooldown_minutes": "10"})

    assert response.status_code == 200
    assert not AlertRule.objects.exists()


def test_an_editor_sends_a_signed_test_message(editor, project, receiver,
                                               django_capture_on_commit_callbacks):
    channel, secret = channel_to(project, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(admin_url("alertchannel"), {
            "action": "send_test", "index": 0, "_selected_action": [channel.pk]})

    [(headers, body)] = receiver.requests
    assert signing.verify(secret, headers, body)
    assert receiver.bodies()[0]["type"] == "perfmon.test"
    delivery = AlertDelivery.objects.get()
    assert (delivery.is_test, delivery.status, delivery.rule) == (True, "sent", None)


# The admin's actions run outside a transaction, as in these two tests: the message goes
# out at once and the page says how it went. (A superuser: these tests empty the tables,
# the roles' groups included.)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reply, said", [
    (200, "Test message to ops hook: sent (HTTP 200)"),
    (404, "Test message to ops hook: failed: HTTP 404 Not Found: ok"),  # its answer
])
def test_the_test_message_action_says_how_it_went(project, make_receiver, reply, said):
    admin = logged_in(person("root", superuser=True))
    channel, _ = channel_to(project, make_receiver(reply).url)
    response = admin.post(admin_url("alertchannel"), {
        "action": "send_test", "index": 0, "_selected_action": [channel.pk]}, follow=True)

    assert said in texts(response)


def test_the_delivery_log_is_visible_and_read_only(editor, project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel)
    ingest(session_payload("ep002_run3", status="failed"))
    delivery = AlertDelivery.objects.get()

    listing = editor.get(admin_url("alertdelivery"))
    assert listing.status_code == 200
    assert "night watch" in listing.content.decode()
    assert editor.get(admin_url("alertdelivery", "add")).status_code == 403
    page = editor.get(admin_url("alertdelivery", "change", delivery.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert editor.post(admin_url("alertdelivery", "delete", delivery.pk),
                       {"post": "yes"}).status_code == 403
    events = editor.get(admin_url("alertevent"))
    assert "ep001 take 1 failed after 42.0 s" in events.content.decode()
    assert editor.get(admin_url("alertevent", "add")).status_code == 403


def test_producers_see_rules_but_do_not_change_them(producer, project, receiver):
    channel, _ = channel_to(project, receiver.url)
    rule = rule_for(project, channel)

    assert producer.get(admin_url("alertrule")).status_code == 200
    assert producer.get(admin_url("alertrule", "add")).status_code == 403
    assert producer.post(admin_url("alertrule", "delete", rule.pk),
                         {"post": "yes"}).status_code == 403
    assert producer.get(admin_url("alertdelivery")).status_code == 200
