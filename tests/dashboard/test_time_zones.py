"""Times are shown in the zone each person picks, labelled; the site's zone by default."""

from datetime import UTC, datetime

import pytest
from django.test import override_settings

from metrics.models import DashboardPreference
from tests.dashboard.world import run_payload, send, user_with

pytestmark = pytest.mark.django_db

STARTED = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def one_session(api):
    return send(api, run_payload("tz1", episode="ep001", started_at=STARTED))


PASSWORD = "a-long-test-password"


def _log_in_through_the_form(client, username):
    # The login form, as a person uses it: the saved zone is applied when they log in.
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]


def _login(client):
    user = user_with("view_session", password=PASSWORD)
    _log_in_through_the_form(client, user.username)
    return user


@override_settings(TIME_ZONE="UTC")
def test_times_default_to_the_sites_zone_and_say_which(client, one_session):
    _login(client)

    content = client.get("/sessions/tz1/").content.decode()

    assert "started 2026-07-01 12:30:00 UTC" in content
    assert "Times: UTC" in content


def test_a_picked_zone_applies_to_every_page_and_is_kept_for_the_next_login(client,
                                                                             one_session):
    user = _login(client)

    response = client.post("/settings/", {"time_zone": "Europe/Paris",
                                          "next": "/sessions/tz1/"})
    assert response.status_code == 302 and response["Location"] == "/sessions/tz1/"
    content = client.get("/sessions/tz1/").content.decode()

    assert "started 2026-07-01 14:30:00 CEST" in content  # UTC+2 in July
    assert DashboardPreference.objects.get(user=user).time_zone == "Europe/Paris"
    client.logout()
    _log_in_through_the_form(client, user.username)
    assert "14:30:00 CEST" in client.get("/sessions/tz1/").content.decode()


def test_an_unknown_zone_is_refused(client, one_session):
    user = _login(client)

    response = client.post("/settings/", {"time_zone": "Mars/Olympus_Mons"})

    assert response.status_code == 200
    assert not DashboardPreference.objects.filter(user=user).exists()


def test_next_never_leaves_the_site(client, one_session):
    _login(client)

    response = client.post("/settings/", {"time_zone": "UTC",
                                          "next": "https://evil.example/"})

    assert response["Location"] == "/settings/"
