"""The session actions: each one does its job and leaves who-did-what in the history."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.test import Client

from metrics.models import Episode, EpisodeCost, OperationStat, Session
from metrics.payloads import session_payload as exported_payload
from tests.admin.helpers import run_action, store
from tests.factories import T0, api_call, script_payload, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_sessions(project) -> list[Session]:
    return [store(project, script_payload("s1", episode="ep001")),
            store(project, script_payload("s2", episode="ep001", started_at=T0 + timedelta(
                hours=1)))]


def history(session: Session) -> list[str]:
    return [entry.get_change_message()
            for entry in LogEntry.objects.filter(object_id=str(session.pk),
                                                 content_type__model="session").order_by("pk")]


def test_rerun_analysis_analyzes_again_and_is_logged(editor, two_sessions,
                                                     django_capture_on_commit_callbacks):
    OperationStat.objects.all().delete()
    Session.objects.update(analyzed_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(editor, "rerun_analysis", two_sessions)

    assert response.status_code == 302
    assert not Session.objects.filter(analyzed_at__isnull=True).exists()
    assert OperationStat.objects.filter(session=two_sessions[0]).exists()
    assert history(two_sessions[0]) == ["Re-ran analysis."]


def test_mark_and_unmark_baseline(editor, eddie, two_sessions):
    s1, s2 = two_sessions
    Session.objects.filter(pk=s2.pk).update(is_baseline=True)

    run_action(editor, "mark_baseline", two_sessions)

    assert set(Session.objects.values_list("is_baseline", flat=True)) == {True}
    assert history(s1) == ["Marked as baseline."]
    assert history(s2) == []  # it already was: nothing changed, nothing logged

    run_action(editor, "unmark_baseline", [s1])

    assert not Session.objects.get(pk=s1.pk).is_baseline
    assert history(s1) == ["Marked as baseline.", "Unmarked as baseline."]
    assert LogEntry.objects.filter(user=eddie).count() == 2


def test_move_asks_for_the_episode_on_a_csrf_protected_page(editor, two_sessions, project,
                                                             other_project):
    Episode.objects.create(project=project, code="ep002")
    Episode.objects.create(project=other_project, code="theirs")

    response = run_action(editor, "move_to_episode", two_sessions)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/metrics/session/move_to_episode.html"
    choices = [label for _, label in response.context["form"].fields["episode"].choices]
    assert choices == ["---------", "ep001", "ep002"]
    assert b"csrfmiddlewaretoken" in response.content
    assert Session.objects.filter(episode__code="ep001").count() == 2


def test_move_without_the_csrf_token_is_refused(eddie, two_sessions, project):
    ep002 = Episode.objects.create(project=project, code="ep002")
    client = Client(enforce_csrf_checks=True)
    client.force_login(eddie)

    response = run_action(client, "move_to_episode", two_sessions, apply="yes",
                          episode=ep002.pk)

    assert response.status_code == 403
    assert Session.objects.filter(episode=ep002).count() == 0


def test_move_moves_the_sessions_their_rollups_and_logs_it(
        editor, two_sessions, project, django_capture_on_commit_callbacks):
    ep002 = Episode.objects.create(project=project, code="ep002")

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(editor, "move_to_episode", two_sessions, apply="yes",
                              episode=ep002.pk)

    assert response.status_code == 302
    assert Session.objects.filter(episode=ep002).count() == 2
    assert list(EpisodeCost.objects.values_list("episode", "sessions")) == [("ep002", 2)]
    assert history(two_sessions[0]) == ["Moved from episode ep001 to ep002."]


def test_move_to_a_new_episode_code_creates_the_episode(editor, two_sessions, project):
    run_action(editor, "move_to_episode", two_sessions[:1], apply="yes", new_code="ep001b")

    created = Episode.objects.get(code="ep001b")
    assert created.project == project
    assert Session.objects.get(pk=two_sessions[0].pk).episode == created
    assert LogEntry.objects.filter(object_id=str(created.pk), action_flag=ADDITION).exists()


@pytest.mark.parametrize("fields", [{}, {"new_code": "not a slug!"},
                                    {"new_code": "ep9", "episode": "ep001"}])
def test_move_needs_exactly_one_valid_target(editor, two_sessions, fields):
    if fields.get("episode"):
        fields["episode"] = Episode.objects.get(code=fields["episode"]).pk

    response = run_action(editor, "move_to_episode", two_sessions, apply="yes", **fields)

    assert response.status_code == 200  # the form again, with its errors
    assert response.context["form"].errors
    assert Session.objects.filter(episode__code="ep001").count() == 2


def test_sessions_of_two_projects_are_not_moved_together(editor, eddie, two_sessions,
                                                        other_project):
    eddie.projects.add(other_project)
    theirs = store(other_project, script_payload("theirs"))

    response = run_action(editor, "move_to_episode", [two_sessions[0], theirs], follow=True)

    assert "one project at a time" in response.content.decode()
    assert not LogEntry.objects.exists()


def test_csv_export_has_one_row_per_session_with_formulas_defused(editor, project):
    store(project, script_payload("s1", tags=["=HYPERLINK(\"http://x\")", "pilot"]))
    s2 = store(project, session_payload("s2", episode=None, started_at=T0 + timedelta(hours=1)))

    response = run_action(editor, "export_csv", Session.objects.all())

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="perfmon-sessions-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["session id"] for r in rows] == ["s1", "s2"]
    first = rows[0]
    assert first["tags"] == "'=HYPERLINK(\"http://x\"), pilot"
    assert (first["episode"], first["status"], first["duration s"]) == ("ep001", "completed",
                                                                         "32.0")
    assert first["total tokens"] == str(Session.objects.get(external_id="s1").total_tokens)
    assert rows[1]["episode"] == "" and rows[1]["cost usd"] == str(s2.cost_usd)


def test_json_export_round_trips_through_the_batch_api(editor, project, other_api):
    sent = [script_payload("s1", scenes=3),
            script_payload("s2", scenes=2, started_at=T0 + timedelta(hours=1),
                           episode="ep002"),
            session_payload("s3", status="running", duration_s=None,
                            started_at=T0 + timedelta(hours=2))]
    sent[0]["api_calls"].append(api_call("client-priced", cost_usd=0.25))
    originals = [store(project, payload) for payload in sent]

    response = run_action(editor, "export_json", originals)

    assert response["Content-Type"] == "application/json"
    body = json.loads(b"".join(response.streaming_content))
    assert [p["session"]["id"] for p in body["sessions"]] == ["s1", "s2", "s3"]
    answer = other_api.post("/batch", body)
    assert answer.status_code == 200
    assert answer.json()["stored"] == 3
    copies = Session.objects.exclude(project=project).order_by("started_at")
    assert [exported_payload(copy) for copy in copies] == body["sessions"]
    assert [(c.total_tokens, c.operations_count, c.episode.code if c.episode else None)
            for c in copies] == [
        (o.total_tokens, o.operations_count, o.episode.code if o.episode else None)
        for o in originals]


def test_json_export_reflects_an_editors_corrections(editor, project, other_api):
    session = store(project, script_payload("s1", episode="ep001"))
    run_action(editor, "move_to_episode", [session], apply="yes", new_code="ep042")
    Session.objects.filter(pk=session.pk).update(tags=["pilot", "test model"])

    body = json.loads(b"".join(run_action(editor, "export_json", [session]).streaming_content))

    assert body["sessions"][0]["session"]["episode"] == "ep042"
    assert other_api.post("/batch", body).json()["stored"] == 1
    copy = Session.objects.exclude(project=project).get()
    assert (copy.episode.code, copy.tags) == ("ep042", ["pilot", "test model"])


def test_move_moves_the_episodes_latest_runs(editor, two_sessions, project):
    ep002 = Episode.objects.create(project=project, code="ep002")

    run_action(editor, "move_to_episode", two_sessions[1:], apply="yes", episode=ep002.pk)

    ep001, ep002 = Episode.objects.get(code="ep001"), Episode.objects.get(code="ep002")
    assert (ep001.latest_run_at, ep001.latest_completed_session) == (T0, two_sessions[0])
    assert (ep002.latest_run_at, ep002.latest_completed_session) == (
        T0 + timedelta(hours=1), two_sessions[1])
