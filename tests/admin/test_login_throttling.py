"""Guessing passwords is slowed down: a user name and address pair is locked out for a
while after a few failures, on the dashboard's login and the admin's alike."""

import time
from datetime import timedelta

import pytest
from django.test import Client, override_settings

from tests.admin.helpers import PASSWORD, person

pytestmark = pytest.mark.django_db

LIMIT = 5  # the default LOGIN_FAILURE_LIMIT


def log_in(client: Client, username: str, password: str, *, path: str = "/accounts/login/",
           address: str = "127.0.0.1"):
    return client.post(path, {"username": username, "password": password},
                       REMOTE_ADDR=address)


@pytest.fixture
def pat(db):
    return person("pat", "Producers")


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_after_the_limit_even_the_right_password_is_refused(client, pat, path):
    for _ in range(LIMIT - 1):
        assert log_in(client, "pat", "wrong", path=path).status_code == 200  # form again
    assert log_in(client, "pat", "wrong", path=path).status_code == 429  # the last allowed

    response = log_in(client, "pat", PASSWORD, path=path)

    assert response.status_code == 429
    assert b"Too many failed log-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_a_few_mistakes_then_the_right_password_logs_in_and_resets_the_count(client, pat):
    for _ in range(LIMIT - 1):
        log_in(client, "pat", "wrong")

    assert log_in(client, "pat", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        log_in(client, "pat", "wrong")
    assert log_in(client, "pat", PASSWORD).status_code == 302


def test_someone_guessing_elsewhere_does_not_lock_the_person_out(client, pat):
    for _ in range(LIMIT):
        log_in(client, "pat", "wrong", address="198.51.100.7")

    assert log_in(Client(), "pat", PASSWORD, address="127.0.0.1").status_code == 302


@override_settings(AXES_COOLOFF_TIME=timedelta(seconds=1))
def test_the_lockout_ends_after_the_cool_off(client, pat):
    for _ in range(LIMIT):
        log_in(client, "pat", "wrong")
    assert log_in(client, "pat", PASSWORD).status_code == 429

    time.sleep(1.2)

    assert log_in(client, "pat", PASSWORD).status_code == 302
