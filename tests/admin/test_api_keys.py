"""API keys in the admin: superusers only; the secret is shown once and never again."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session as WebSession

from ingest.models import ApiKey, hash_secret
from tests.admin.helpers import admin_url, logged_in, person
from tests.conftest import ApiClient
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return logged_in(person("root", superuser=True))


def key_url(view: str = "changelist", *args) -> str:
    return admin_url("apikey", view, *args, app="ingest")


def create_key(client, project, name: str = "render farm") -> tuple[ApiKey, str]:
    response = client.post(key_url("add"), {"project": project.pk, "name": name})
    assert response.status_code == 200
    raw_key = re.search(r'value="(pm_[^"]+)"', response.content.decode()).group(1)
    return ApiKey.objects.get(name=name), raw_key


def test_creating_a_key_shows_a_working_secret_once(root, project):
    response = root.post(key_url("add"), {"project": project.pk, "name": "render farm"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw_key = re.search(r'value="(pm_[^"]+)"', response.content.decode()).group(1)
    key = ApiKey.objects.get()
    assert key.secret_hash == hash_secret(raw_key) and key.project == project
    assert ApiClient(raw_key).post("/sessions", script_payload("s1")).status_code == 201
    assert LogEntry.objects.get(object_id=str(key.pk)).get_change_message() == "Added."


def test_the_secret_is_never_shown_or_kept_again(root, project):
    key, raw_key = create_key(root, project)
    secret_part = raw_key.removeprefix(key.prefix)

    pages = [root.get(key_url()), root.get(key_url("change", key.pk)),
             root.get(key_url("history", key.pk)), root.get("/admin/")]

    for page in pages:
        assert secret_part not in page.content.decode()
        assert key.secret_hash not in page.content.decode()
    stored = " ".join(s.session_data for s in WebSession.objects.all())
    assert secret_part not in stored
    assert key.prefix in pages[0].content.decode()


def test_revoking_a_key_refuses_it_and_is_logged(root, project):
    key, raw_key = create_key(root, project)

    response = root.post(key_url(), {"action": "revoke", "index": 0,
                                     "_selected_action": [key.pk]})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(raw_key).post("/sessions", script_payload("s1")).status_code == 401
    assert [e.get_change_message() for e in LogEntry.objects.order_by("pk")] == [
        "Added.", "Revoked."]
    assert "revoked" in root.get(key_url()).content.decode()


def test_the_list_shows_when_a_key_was_last_used(root, project):
    key, raw_key = create_key(root, project)
    assert root.get(key_url()).context["cl"].result_list[0].last_used_at is None

    ApiClient(raw_key).post("/sessions", script_payload("s1"))

    assert root.get(key_url()).context["cl"].result_list[0].last_used_at is not None


def test_a_key_keeps_its_project_prefix_and_times_when_renamed(root, project,
                                                                other_project):
    key, _ = create_key(root, project)

    root.post(key_url("change", key.pk), {"name": "renamed", "project": other_project.pk,
                                          "revoked_at_0": "2020-01-01"})

    key.refresh_from_db()
    assert (key.name, key.project, key.revoked_at) == ("renamed", project, None)


@pytest.mark.parametrize("role", ["Producers", "Editors"])
def test_only_superusers_see_or_manage_keys(role, project, api_key):
    client = logged_in(person("someone", role))
    key, _ = api_key

    assert client.get(key_url()).status_code == 403
    assert client.get(key_url("add")).status_code == 403
    assert client.get(key_url("change", key.pk)).status_code == 403
    assert client.post(key_url("add"), {"project": project.pk, "name": "x"}
                       ).status_code == 403
    assert client.post(key_url(), {"action": "revoke", "index": 0,
                                   "_selected_action": [key.pk]}).status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None
