"""Roles: Producers look and annotate, Editors also correct, superusers manage API keys."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group

from metrics.models import Annotation, Episode, Session
from tests.admin.helpers import admin_url, logged_in, person, run_action, store
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(project) -> Session:
    return store(project, script_payload("s1"))


@pytest.fixture
def producer(db):
    return person("pat", "Producers")


def test_the_migration_creates_both_roles_with_their_permissions():
    producers = set(Group.objects.get(name="Producers").permissions.values_list("codename",
                                                                             flat=True))
    editors = set(Group.objects.get(name="Editors").permissions.values_list("codename",
                                                                         flat=True))

    assert {"view_session", "view_operation", "view_modelprice", "view_budget",
            "add_annotation", "change_annotation"} <= producers
    assert not {p for p in producers if p.startswith(("change_", "delete_", "add_"))} - {
        "add_annotation", "change_annotation"}
    assert producers < editors
    assert {"change_session", "change_episode", "add_modelprice", "change_modelprice",
            "delete_modelprice", "add_budget", "change_budget", "delete_budget",
            "delete_annotation"} <= editors
    assert not any("apikey" in p for p in editors)


# --- the dashboard ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["Producers", "Editors"])
def test_each_role_sees_the_dashboard_and_annotates_there(role, session):
    client = logged_in(person("someone", role, staff=False))

    assert client.get("/").status_code == 200
    assert client.get("/sessions/s1/").status_code == 200
    response = client.post("/sessions/s1/annotations/", {"text": "used a test model"})

    assert response.status_code == 302
    assert Annotation.objects.get().author.username == "someone"


def test_a_user_without_a_role_is_refused_the_dashboard_and_annotations(session):
    client = logged_in(person("nobody", staff=True))

    assert client.get("/").status_code == 403
    assert client.get("/sessions/s1/").status_code == 403
    assert client.post("/sessions/s1/annotations/", {"text": "x"}).status_code == 403
    assert not Annotation.objects.exists()


def test_the_dashboard_needs_only_the_role_and_the_admin_also_needs_staff(session):
    client = logged_in(person("pat", "Producers", staff=False))

    assert client.get("/sessions/s1/").status_code == 200
    response = client.get(admin_url("session"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- producers in the admin -------------------------------------------------------------

def test_a_producer_sees_sessions_prices_and_budgets_but_not_api_keys(producer, session):
    client = logged_in(producer)

    for model in ("session", "episode", "operation", "apicall", "modelprice", "budget",
                  "annotation"):
        assert client.get(admin_url(model)).status_code == 200, model
    assert client.get(admin_url("session", "change", session.pk)).status_code == 200
    assert client.get(admin_url("apikey", app="ingest")).status_code == 403
    assert b"API keys" not in client.get("/admin/").content


def test_a_producer_cannot_change_session_fields(producer, session, project):
    other = Episode.objects.create(project=project, code="ep999")
    client = logged_in(producer)

    response = client.post(admin_url("session", "change", session.pk), {
        "episode": other.pk, "tags": "hacked", "notes": "mine now", "is_baseline": "on",
        **empty_annotations(),
    })

    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.episode.code, session.tags, session.notes, session.is_baseline) == (
        "ep001", ["pilot"], "", False)


def test_a_producer_annotates_in_the_admin_and_the_author_is_filled_in(producer, session):
    client = logged_in(producer)

    response = client.post(admin_url("session", "change", session.pk),
                           empty_annotations(extra={"annotations-0-text": "ran on a test model"},
                                             total=1))

    assert response.status_code == 302
    note = Annotation.objects.get()
    assert (note.text, note.author) == ("ran on a test model", producer)
    entry = LogEntry.objects.get(object_id=str(session.pk))
    assert entry.user == producer
    assert "Added annotation" in entry.get_change_message()


def test_a_producer_edits_their_own_annotation_but_not_someone_elses(producer, session):
    mine = Annotation.objects.create(session=session, author=producer, text="mine")
    theirs = Annotation.objects.create(session=session, author=person("kim", "Producers"),
                                       text="theirs")
    client = logged_in(producer)

    page = client.get(admin_url("session", "change", session.pk)).content.decode()
    assert re.search(r'<textarea name="annotations-1-text"[^>]* disabled', page)
    assert not re.search(r'<textarea name="annotations-0-text"[^>]* disabled', page)
    as_a_browser_sends_it = inline_edit([(mine, "mine, corrected"), (theirs, "")])
    del as_a_browser_sends_it["annotations-1-text"]  # disabled fields are not submitted
    tampered = inline_edit([(mine, "mine, corrected twice"), (theirs, "overwritten")])

    assert client.post(admin_url("session", "change", session.pk),
                       as_a_browser_sends_it).status_code == 302
    mine.refresh_from_db()
    assert mine.text == "mine, corrected"
    assert client.post(admin_url("session", "change", session.pk),
                       tampered).status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.text, theirs.text) == ("mine, corrected twice", "theirs")


def test_a_producer_cannot_change_someone_elses_annotation_in_the_annotation_admin(
        producer, session):
    theirs = Annotation.objects.create(session=session, author=person("kim", "Producers"),
                                       text="theirs")
    mine = Annotation.objects.create(session=session, author=producer, text="mine")
    client = logged_in(producer)
    url = admin_url("annotation", "change", theirs.pk)

    assert client.post(url, {"text": "overwritten"}).status_code == 403
    theirs.refresh_from_db()
    assert theirs.text == "theirs"
    assert b"Save" not in client.get(url).content  # a read-only view
    response = client.post(admin_url("annotation", "change", mine.pk), {"text": "better"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.text == "better"
    assert client.post(admin_url("annotation", "delete", mine.pk), {"post": "yes"}
                       ).status_code == 403


def test_a_producer_may_export_but_not_run_the_editing_actions(producer, session):
    client = logged_in(producer)

    offered = client.get(admin_url("session")).context["action_form"].fields["action"].choices
    assert {name for name, _ in offered} == {"", "export_csv", "export_json"}
    assert run_action(client, "export_csv", [session]).status_code == 200
    for action in ("rerun_analysis", "mark_baseline", "move_to_episode"):
        response = run_action(client, action, [session], apply="yes", new_code="ep009")
        assert response.status_code == 302  # refused as "no action selected"
    session.refresh_from_db()
    assert not session.is_baseline
    assert session.episode.code == "ep001"
    assert not LogEntry.objects.exists()


def test_a_producer_may_not_add_or_change_prices_and_budgets(producer):
    client = logged_in(producer)

    assert client.get(admin_url("modelprice", "add")).status_code == 403
    assert client.get(admin_url("budget", "add")).status_code == 403


# --- editors ----------------------------------------------------------------------------

def test_an_editor_corrects_a_session_and_any_annotation(eddie, session, project):
    right = Episode.objects.create(project=project, code="ep002")
    theirs = Annotation.objects.create(session=session, author=person("kim", "Producers"),
                                       text="theirs")
    client = logged_in(eddie)

    response = client.post(admin_url("session", "change", session.pk), {
        "episode": right.pk, "tags": "pilot, test-model", "notes": "wrong episode code",
        "is_baseline": "on", **inline_edit([(theirs, "theirs, typo fixed")]),
    })

    assert response.status_code == 302
    session.refresh_from_db()
    theirs.refresh_from_db()
    assert (session.episode, session.tags, session.notes, session.is_baseline) == (
        right, ["pilot", "test-model"], "wrong episode code", True)
    assert theirs.text == "theirs, typo fixed"


def test_an_editor_manages_prices_and_budgets_but_not_api_keys(eddie):
    client = logged_in(eddie)

    assert client.get(admin_url("modelprice", "add")).status_code == 200
    assert client.get(admin_url("budget", "add")).status_code == 200
    assert client.get(admin_url("apikey", app="ingest")).status_code == 403
    assert client.get(admin_url("apikey", "add", app="ingest")).status_code == 403


def test_an_editor_runs_the_editing_actions(eddie, session):
    response = run_action(logged_in(eddie), "mark_baseline", [session])

    assert response.status_code == 302
    session.refresh_from_db()
    assert session.is_baseline


def test_nobody_edits_measurements(eddie, session):
    client = logged_in(eddie)
    op = session.operations.first()

    assert client.post(admin_url("operation", "change", op.pk), {"name": "x"}
                       ).status_code == 403
    assert client.get(admin_url("session", "add")).status_code == 403


def test_a_superuser_manages_api_keys():
    client = logged_in(person("root", superuser=True))

    assert client.get(admin_url("apikey", app="ingest")).status_code == 200
    assert client.get(admin_url("apikey", "add", app="ingest")).status_code == 200


# --- form data for the annotation inline --------------------------------------------------

def empty_annotations(*, extra: dict | None = None, total: int = 0) -> dict:
    return {
        "annotations-TOTAL_FORMS": str(total),
        "annotations-INITIAL_FORMS": "0",
        "annotations-MIN_NUM_FORMS": "0",
        "annotations-MAX_NUM_FORMS": "1000",
        **(extra or {}),
    }


def inline_edit(edits: list[tuple[Annotation, str]]) -> dict:
    data = {
        "annotations-TOTAL_FORMS": str(len(edits)),
        "annotations-INITIAL_FORMS": str(len(edits)),
        "annotations-MIN_NUM_FORMS": "0",
        "annotations-MAX_NUM_FORMS": "1000",
    }
    for n, (annotation, text) in enumerate(edits):
        data[f"annotations-{n}-id"] = annotation.pk
        data[f"annotations-{n}-session"] = annotation.session_id
        data[f"annotations-{n}-text"] = text
    return data
