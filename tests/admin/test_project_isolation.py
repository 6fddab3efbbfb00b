"""The admin shows a person the rows of their own projects only."""

import pytest

from metrics.models import Annotation, ApiCall, Budget, Episode, Operation, Session
from tests.admin.helpers import admin_url, logged_in, person, store
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_project):
    session = store(other_project, script_payload("theirs", episode="ep900"))
    Annotation.objects.create(session=session, text="their note")
    Budget.objects.create(project=other_project, name="their budget", metric="duration_s",
                          threshold=10)
    return session


@pytest.fixture
def ours(project):
    return store(project, script_payload("ours", episode="ep001"))


def their_objects(theirs):
    return [
        ("session", theirs.pk),
        ("episode", theirs.episode_id),
        ("annotation", theirs.annotations.get().pk),
        ("operation", Operation.objects.filter(session=theirs).first().pk),
        ("apicall", ApiCall.objects.filter(session=theirs).first().pk),
        ("budget", Budget.objects.get(name="their budget").pk),
        ("project", theirs.project_id),
    ]


@pytest.mark.parametrize("model", ["session", "episode", "annotation", "operation",
                                   "apicall", "budget", "project"])
def test_lists_show_only_ones_own_projects_rows(editor, ours, theirs, model):
    page = editor.get(admin_url(model)).content.decode()

    assert "theirs" not in page and "ep900" not in page and "their " not in page
    assert "Other show" not in page


def test_another_projects_change_pages_are_not_found(editor, ours, theirs):
    for model, pk in their_objects(theirs):
        response = editor.get(admin_url(model, "change", pk))
        # the admin answers a row outside its queryset like a missing one: back to the index
        assert response.status_code == 302, model
        assert response["Location"] == "/admin/", model


def test_filtering_by_another_projects_session_finds_nothing(editor, ours, theirs):
    page = editor.get(admin_url("operation"), {"session": theirs.pk}).content.decode()

    assert "theirs" not in page and "0 operations" in page


def test_a_form_offers_only_ones_own_projects(editor, ours, theirs):
    page = editor.get(admin_url("budget", "add")).content.decode()

    assert "Other show" not in page and "Default" in page


def test_a_superuser_sees_every_project(ours, theirs):
    root = logged_in(person("root", superuser=True))

    assert "theirs" in root.get(admin_url("session")).content.decode()
    assert Session.objects.count() == 2 and Episode.objects.count() == 2
