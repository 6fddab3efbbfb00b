"""`manage.py alert_channel`: add prints the secret alone on its last line; list shows."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from metrics.alerts import signing
from metrics.alerts.models import AlertChannel, AlertRule
from metrics.alerts.tasks import send_test_message

pytestmark = pytest.mark.django_db


def alert_channel(*args: str) -> list[str]:
    out = StringIO()
    call_command("alert_channel", *args, stdout=out)
    return out.getvalue().splitlines()


def test_add_prints_the_secret_that_signs_its_messages(project, receiver, after_commit):
    lines = alert_channel("add", "night hook", "--webhook", receiver.url,
                          "--on", "session_failed,spend", "--spend-limit", "50")

    secret = lines[-1]
    channel = AlertChannel.objects.get(name="night hook")
    assert secret == channel.secret and secret.startswith("whsec_")
    rule = AlertRule.objects.get(name="night hook")
    assert rule.events == ["session_failed", "spend"]
    assert list(rule.channels.all()) == [channel]
    assert receiver.requests == []  # adding a channel fetches nothing

    after_commit(send_test_message, channel)
    [(headers, body)] = receiver.requests
    assert signing.verify(secret, headers, body)


def test_list_shows_each_channel_without_its_secret(project, receiver):
    secret = alert_channel("add", "producers", "--email", "producer@example.test")[-1]
    alert_channel("add", "slack", "--slack", receiver.url, "--on", "regression")

    lines = alert_channel("list")

    assert len(lines) == 2
    assert lines[0].split("\t")[:4] == ["default", "producers", "email", "producer@example.test"]
    assert lines[1].split("\t")[:4] == ["default", "slack", "slack",
                                        receiver.url.split("/")[2]]
    assert "rules: slack" in lines[1]
    assert not any(secret in line for line in lines)


@pytest.mark.parametrize("args, problem", [
    (["--webhook", "ftp://example.test/x"], "url"),
    (["--webhook", "http://127.0.0.1:9/x", "--on", "budget_failed,earthquake"], "events"),
    (["--webhook", "http://127.0.0.1:9/x", "--on", "spend"], "spend limit"),
    (["--webhook", "http://127.0.0.1:9/x", "--on", "silence"], "expected interval"),
    (["--webhook", "http://127.0.0.1:9/x", "--project", "nope"], "No project"),
])
def test_add_refuses_what_cannot_work(project, args, problem):
    with pytest.raises(CommandError, match=problem):
        alert_channel("add", "hook", *args)

    assert not AlertChannel.objects.exists()


def test_a_second_channel_of_the_same_name_is_refused(project):
    alert_channel("add", "hook", "--webhook", "http://127.0.0.1:9/x")

    with pytest.raises(CommandError, match="already exists"):
        alert_channel("add", "hook", "--webhook", "http://127.0.0.1:9/y")
    assert AlertChannel.objects.count() == 1
