"""An editor's corrections in the admin are not undone when the generator resends."""

import pytest

from metrics.models import Episode, Session
from tests.admin.helpers import admin_url, logged_in, person, run_action, store
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


def test_a_session_moved_to_another_episode_stays_there_after_a_resend(api, project):
    payload = script_payload("s1", episode="ep_wrong")
    session = store(project, payload)
    right = Episode.objects.create(project=project, code="ep_right")
    editor = logged_in(person("eddie", "Editors"))

    run_action(editor, "move_to_episode", [session], apply="yes", episode=right.pk)
    api.post("/sessions", payload)

    assert Session.objects.get().episode == right


def test_tags_corrected_on_the_change_page_stay_after_a_resend(api, project):
    payload = script_payload("s1", episode="ep001")
    session = store(project, payload)
    editor = logged_in(person("eddie", "Editors"))
    page = editor.get(admin_url("session", "change", session.pk))
    form = {k: v for k, v in page.context["adminform"].form.initial.items()
            if k in ("episode", "notes", "is_baseline") and v is not None}

    response = editor.post(admin_url("session", "change", session.pk), {
        **form, "episode": session.episode_id, "tags": "reviewed",
        "annotations-TOTAL_FORMS": 0, "annotations-INITIAL_FORMS": 0,
    })
    assert response.status_code == 302, response.content[:2000]
    api.post("/sessions", payload)  # the generator's original tags: ["pilot"]

    assert Session.objects.get().tags == ["reviewed"]


def test_an_episode_changed_on_the_change_page_takes_the_session_as_its_latest_run(project):
    session = store(project, script_payload("s1", episode="ep_wrong"))
    right = Episode.objects.create(project=project, code="ep_right")
    editor = logged_in(person("eddie", "Editors"))

    response = editor.post(admin_url("session", "change", session.pk), {
        "episode": right.pk, "tags": "pilot",
        "annotations-TOTAL_FORMS": 0, "annotations-INITIAL_FORMS": 0,
    })

    assert response.status_code == 302, response.content[:2000]
    wrong, right = Episode.objects.get(code="ep_wrong"), Episode.objects.get(code="ep_right")
    assert (wrong.latest_run_at, wrong.latest_completed_session) == (None, None)
    assert (right.latest_run_at, right.latest_completed_session) == (
        session.started_at, session)
