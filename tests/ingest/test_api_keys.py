"""API keys: hashed at rest, revocable, scoped to one project, and required on every route."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest.models import ApiKey, hash_secret
from metrics.models import Project, Session
from tests.conftest import ApiClient
from tests.factories import script_payload

pytestmark = pytest.mark.django_db

ROUTES = [
    ("post", "/sessions"),
    ("post", "/batch"),
    ("get", "/sessions"),
    ("get", "/sessions/ep001_run1"),
    ("get", "/episodes"),
    ("get", "/episodes/ep001"),
]


def call(client: ApiClient, method: str, path: str):
    if method == "post":
        return client.post(path, script_payload())
    return client.get(path)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_request_without_a_key(anonymous_api, method, path):
    assert call(anonymous_api, method, path).status_code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_an_unknown_key(db, method, path):
    forged = ApiClient("pm_0123456789ab_not-a-real-secret")
    assert call(forged, method, path).status_code == 401


def test_every_route_in_the_openapi_schema_is_covered_above(client):
    schema = client.get("/api/v1/openapi.json").json()
    served = {
        (method, path.removeprefix("/api/v1"))
        for path, item in schema["paths"].items()
        for method in item
    }
    tested = {(m, p.replace("ep001_run1", "{session_id}").replace("ep001", "{code}"))
              for m, p in ROUTES}
    assert served == tested


def test_a_right_prefix_with_a_wrong_secret_is_refused(api_key):
    key, raw = api_key
    tampered = raw[:-4] + ("aaaa" if not raw.endswith("aaaa") else "bbbb")

    assert ApiClient(tampered).get("/sessions").status_code == 401


def test_a_revoked_key_is_refused(api, api_key):
    api_key[0].revoke()

    assert api.get("/sessions").status_code == 401


def test_a_key_in_another_scheme_is_refused(api_key):
    client = ApiClient(None)
    client.headers = {"Authorization": f"Token {api_key[1]}"}

    assert client.get("/sessions").status_code == 401


def test_only_the_hash_of_the_secret_is_stored(api_key):
    key, raw = api_key
    stored = ApiKey.objects.filter(pk=key.pk).values().get()

    assert raw not in str(stored)
    assert stored["secret_hash"] == hash_secret(raw)
    assert raw.startswith(stored["prefix"] + "_")


def test_use_is_recorded_at_most_once_a_minute(api, api_key):
    key = api_key[0]
    assert key.last_used_at is None

    api.get("/sessions")
    first_use = ApiKey.objects.get(pk=key.pk).last_used_at
    api.get("/sessions")

    assert first_use is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first_use
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first_use - timedelta(minutes=2))
    api.get("/sessions")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first_use - timedelta(seconds=1)


def test_another_projects_session_answers_404(api, other_api):
    other_api.post("/sessions", script_payload("theirs"))

    assert api.get("/sessions/theirs").status_code == 404
    assert api.get("/sessions").json()["items"] == []
    assert api.get("/episodes/ep001").status_code == 404


def test_the_same_session_id_lives_separately_in_two_projects(api, other_api):
    assert api.post("/sessions", script_payload("ep001_run1", scenes=2)).status_code == 201
    assert other_api.post("/sessions", script_payload("ep001_run1", scenes=5)).status_code == 201

    assert Session.objects.filter(external_id="ep001_run1").count() == 2
    assert api.get("/sessions/ep001_run1").json()["api"]["calls"] == 4
    assert other_api.get("/sessions/ep001_run1").json()["api"]["calls"] == 10


def test_create_api_key_prints_a_working_key_alone_on_its_last_line(db, project):
    out = StringIO()
    call_command("create_api_key", "render-01", stdout=out)

    raw = out.getvalue().strip().splitlines()[-1]
    assert " " not in raw
    key = ApiKey.objects.get(name="render-01")
    assert key.project == project
    assert ApiClient(raw).get("/sessions").status_code == 200


def test_create_api_key_creates_a_missing_project_and_says_so(db):
    out = StringIO()
    call_command("create_api_key", "gen", "--project", "night-shift", stdout=out)

    assert "Created project 'night-shift'" in out.getvalue()
    assert ApiKey.objects.get(name="gen").project == Project.objects.get(slug="night-shift")


def test_a_revoked_key_cannot_write(api, api_key):
    ApiKey.objects.filter(pk=api_key[0].pk).update(revoked_at=timezone.now())
    assert api.post("/sessions", script_payload()).status_code == 401
    assert Session.objects.count() == 0
