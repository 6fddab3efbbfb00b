"""The session page the API links to: login required, user-supplied text escaped."""

import pytest
from django.contrib.auth.models import User

from metrics import analysis
from metrics.models import Session
from tests.factories import operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    user = User.objects.create_user("producer", password="a-long-test-password")
    client.force_login(user)
    return client


def test_the_page_requires_login(client, api):
    api.post("/sessions", script_payload("s1"))

    response = client.get("/sessions/s1/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_url_returned_by_ingest_opens_the_session(viewer, api):
    url = api.post("/sessions", script_payload("s1")).json()["url"]

    response = viewer.get(url.removeprefix("http://testserver"))

    assert response.status_code == 200
    assert b"Session s1" in response.content


def test_operation_names_are_escaped(viewer, api):
    ops = [operation("a", "<script>alert(1)</script>", start_s=0, duration_s=5)]
    api.post("/sessions", session_payload("s1", operations=ops))
    analysis.analyze_session(Session.objects.get())

    content = viewer.get("/sessions/s1/").content

    assert b"<script>alert(1)</script>" not in content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_another_projects_session_is_not_found_in_the_default_project(viewer, other_api):
    other_api.post("/sessions", script_payload("theirs"))

    assert viewer.get("/sessions/theirs/").status_code == 404
    assert viewer.get("/sessions/theirs/?project=other-show").status_code == 200
