"""The session page the API links to: login and role required, user text escaped."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission, User

from metrics.analysis.analyze import analyze_session
from metrics.models import Annotation, Session
from tests.factories import operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


def user_with(*codenames: str, name: str = "producer") -> User:
    user = User.objects.create_user(name, password="a-long-test-password")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="metrics",
                                                         codename__in=codenames))
    return user


def test_the_page_requires_login(client, api):
    api.post("/sessions", script_payload("s1"))

    response = client.get("/sessions/s1/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_without_a_role_is_refused(client, api):
    api.post("/sessions", script_payload("s1"))
    client.force_login(User.objects.create_user("nobody", password="a-long-test-password"))

    assert client.get("/sessions/s1/").status_code == 403


def test_the_url_returned_by_ingest_opens_the_session(viewer, api):
    url = api.post("/sessions", script_payload("s1")).json()["url"]

    response = viewer.get(url.removeprefix("http://testserver"))

    assert response.status_code == 200
    assert b"Session s1" in response.content


def test_operation_names_are_escaped(viewer, api):
    ops = [operation("a", "<script>alert(1)</script>", start_s=0, duration_s=5)]
    api.post("/sessions", session_payload("s1", operations=ops))
    analyze_session(Session.objects.get())

    content = viewer.get("/sessions/s1/").content

    assert b"<script>alert(1)</script>" not in content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_another_projects_session_is_not_found_in_the_default_project(viewer_of_both, other_api):
    other_api.post("/sessions", script_payload("theirs"))

    assert viewer_of_both.get("/sessions/theirs/").status_code == 404
    assert viewer_of_both.get("/sessions/theirs/?project=other-show").status_code == 200


def test_an_annotation_is_added_from_the_page_and_shown_escaped(viewer, api):
    api.post("/sessions", script_payload("s1"))

    response = viewer.post("/sessions/s1/annotations/", {"text": "<b>test model</b> run"})

    assert response.status_code == 302
    assert response["Location"] == "/sessions/s1/"
    note = Annotation.objects.get()
    assert (note.text, note.author.username) == ("<b>test model</b> run", "producer")
    logged = LogEntry.objects.get(object_id=str(note.pk))
    assert (logged.user.username, logged.action_flag) == ("producer", ADDITION)
    content = viewer.get("/sessions/s1/").content
    assert b"&lt;b&gt;test model&lt;/b&gt; run" in content


def test_annotating_in_another_project_returns_to_that_projects_page(viewer_of_both, other_api):
    other_api.post("/sessions", script_payload("theirs"))

    response = viewer_of_both.post("/sessions/theirs/annotations/?project=other-show",
                                   {"text": "ok"})

    assert response["Location"] == "/sessions/theirs/?project=other-show"


def test_a_viewer_without_the_annotation_permission_cannot_annotate(client, api):
    api.post("/sessions", script_payload("s1"))
    client.force_login(user_with("view_session", name="reader"))

    assert b"Add annotation" not in client.get("/sessions/s1/").content
    assert client.post("/sessions/s1/annotations/", {"text": "hi"}).status_code == 403
    assert Annotation.objects.count() == 0


def test_an_empty_annotation_is_not_stored(viewer, api):
    api.post("/sessions", script_payload("s1"))

    viewer.post("/sessions/s1/annotations/", {"text": "   "})

    assert Annotation.objects.count() == 0


def test_the_annotation_form_is_csrf_protected(api):
    from django.test import Client

    api.post("/sessions", script_payload("s1"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user_with("view_session", "add_annotation"))

    assert strict.post("/sessions/s1/annotations/", {"text": "hi"}).status_code == 403
    assert Annotation.objects.count() == 0
