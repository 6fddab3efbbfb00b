"""The session admin: the list an editor scans, the page they correct, the history it leaves."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from metrics.admin.sessions import SessionAdmin
from metrics.models import Annotation, Budget, Episode, EpisodeCost, Session
from tests.admin.helpers import admin_url, logged_in, person, run_action, store
from tests.factories import api_call, big_payload, operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_budget(project) -> Budget:
    Budget.objects.all().delete()  # the seeded defaults would blur the counts
    return Budget.objects.create(project=project, name="fast", metric="duration_s",
                                 threshold=10)


def listed(client, **params) -> list[str]:
    response = client.get(admin_url("session"), params)
    assert response.status_code == 200
    return sorted(s.external_id for s in response.context["cl"].result_list)


def test_the_list_shows_budget_status_annotation_count_and_hit_rate(editor, project,
                                                                     one_budget):
    slow = store(project, script_payload("slow", scenes=3))  # 32 s, over the 10 s budget
    store(project, session_payload("quick", duration_s=5.0, cache=(3, 1)))
    store(project, session_payload("running", status="running", duration_s=None))
    Annotation.objects.create(session=slow, text="one")
    Annotation.objects.create(session=slow, text="two")

    response = editor.get(admin_url("session"))

    rows = {s.external_id: s for s in response.context["cl"].result_list}
    assert (rows["slow"].budget_failed, rows["slow"].annotations_total) == (1, 2)
    assert (rows["quick"].budget_checked, rows["quick"].budget_failed) == (1, 0)
    assert rows["running"].budget_checked == 0
    content = response.content.decode()
    assert "1 over" in content and ">ok<" in content and ">75%<" in content
    assert 'href="/sessions/slow/"' in content  # the dashboard page


def test_a_deactivated_budget_no_longer_counts_against_sessions(editor, project, one_budget):
    store(project, script_payload("slow", scenes=3))
    one_budget.active = False
    one_budget.save()

    assert listed(editor, budget="failed") == []
    assert listed(editor, budget="unchecked") == ["slow"]


def test_filters_narrow_the_list(editor, project, one_budget):
    store(project, script_payload("slow", scenes=3, episode="ep001"))
    store(project, session_payload("quick", episode="ep002", duration_s=5.0,
                                   workflow="rewrite", environment="production"))
    ep002 = Episode.objects.get(code="ep002")
    Session.objects.filter(external_id="quick").update(is_baseline=True)

    assert listed(editor, budget="failed") == ["slow"]
    assert listed(editor, budget="passed") == ["quick"]
    assert listed(editor, episode__id__exact=ep002.pk) == ["quick"]
    assert listed(editor, workflow="rewrite") == ["quick"]
    assert listed(editor, environment="production") == ["quick"]
    assert listed(editor, is_baseline__exact=1) == ["quick"]
    assert listed(editor, status__exact="completed") == ["quick", "slow"]
    assert listed(editor, started_at__year=2026, started_at__month=11) == ["quick", "slow"]


def test_search_finds_sessions_by_id_episode_and_tag(editor, project):
    store(project, session_payload("s-pilot", episode="ep001", tags=["pilot"]))
    store(project, session_payload("s-tested", episode="ep777", tags=["test-model"]))

    assert listed(editor, q="s-pil") == ["s-pilot"]
    assert listed(editor, q="ep777") == ["s-tested"]
    assert listed(editor, q="test-model") == ["s-tested"]


def test_the_change_page_shows_the_slowest_operations_escaped_and_links_to_all(editor,
                                                                               project):
    ops = [operation("r", "generate_full_script", start_s=0, duration_s=50)]
    ops += [operation(f"o{i}", f"step_{i}", start_s=i, duration_s=float(i), parent_id="r")
            for i in range(1, 40)]
    ops.append(operation("x", "<script>alert(1)</script>", start_s=0, duration_s=45,
                         parent_id="r"))
    session = store(project, session_payload("s1", operations=ops,
                                             api_calls=[api_call("c1", operation_id="o3")]))

    content = editor.get(admin_url("session", "change", session.pk)).content.decode()

    assert "generate_full_script" in content and "step_39" in content
    assert "step_1<" not in content  # only the slowest 20 of 41
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert f"/admin/metrics/operation/?session={session.pk}" in content
    assert "All 41 operations" in content
    assert f"/admin/metrics/apicall/?session={session.pk}" in content
    assert 'href="/sessions/s1/"' in content


def test_the_full_operation_list_is_one_sessions_slowest_first(editor, project):
    one = store(project, script_payload("one", scenes=2))
    store(project, script_payload("two", scenes=5))

    response = editor.get(admin_url("operation"), {"session": one.pk})

    rows = list(response.context["cl"].result_list)
    assert {op.session_id for op in rows} == {one.pk}
    assert [op.duration_s for op in rows] == sorted((op.duration_s for op in rows),
                                                    reverse=True)
    assert len(rows) == 3
    assert editor.get(admin_url("operation"), {"session": "x"}).status_code in (200, 302)


def test_an_editor_moves_a_session_by_editing_its_episode_and_the_rollups_follow(
        editor, project, django_capture_on_commit_callbacks):
    session = store(project, script_payload("s1", episode="ep001"))
    right = Episode.objects.create(project=project, code="ep002")
    assert set(EpisodeCost.objects.values_list("episode", flat=True)) == {"ep001"}

    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(admin_url("session", "change", session.pk), {
            "episode": right.pk, "tags": "pilot, test model", "notes": "", **NO_ANNOTATIONS,
        })

    assert response.status_code == 302
    assert set(EpisodeCost.objects.values_list("episode", flat=True)) == {"ep002"}
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Session), object_id=str(session.pk))
    assert entry.user.username == "eddie"
    assert entry.get_change_message() == "Changed Episode and Tags."


def test_an_episode_of_another_project_cannot_be_chosen(editor, project, other_project):
    session = store(project, script_payload("s1"))
    theirs = Episode.objects.create(project=other_project, code="ep001")

    response = editor.post(admin_url("session", "change", session.pk),
                           {"episode": theirs.pk, "tags": "", **NO_ANNOTATIONS})

    assert response.status_code == 200
    assert "episode" in response.context["adminform"].form.errors
    session.refresh_from_db()
    assert session.episode.project == project


def test_tags_are_edited_as_a_comma_separated_line_within_the_wire_limits(editor, project):
    session = store(project, script_payload("s1"))
    url = admin_url("session", "change", session.pk)

    editor.post(url, {"tags": " pilot ,rerun,, pilot", **NO_ANNOTATIONS})
    session.refresh_from_db()
    assert session.tags == ["pilot", "rerun"]

    response = editor.post(url, {"tags": "x" * 201, **NO_ANNOTATIONS})
    assert response.status_code == 200
    assert "tags" in response.context["adminform"].form.errors


def test_saving_writes_only_the_edited_fields_not_what_ingest_merged_meanwhile(
        editor, project, monkeypatch):
    session = store(project, script_payload("s1"))
    loaded = Session.objects.get(pk=session.pk)  # what the admin read when the POST came
    Session.objects.filter(pk=session.pk).update(host="render-02")  # a merge, meanwhile
    monkeypatch.setattr(SessionAdmin, "get_object", lambda *args, **kwargs: loaded)

    editor.post(admin_url("session", "change", session.pk),
                {"episode": session.episode_id, "tags": "pilot", "notes": "checked",
                 **NO_ANNOTATIONS})

    session.refresh_from_db()
    assert (session.host, session.notes) == ("render-02", "checked")


def test_annotations_added_inline_get_their_author_and_time(editor, project):
    session = store(project, script_payload("s1"))

    editor.post(admin_url("session", "change", session.pk), {
        "episode": session.episode_id, "tags": "pilot", **NO_ANNOTATIONS,
        "annotations-TOTAL_FORMS": "1", "annotations-0-text": "used a test model",
    })

    note = Annotation.objects.get()
    assert (note.author.username, note.session) == ("eddie", session)
    assert note.created_at is not None


NO_ANNOTATIONS = {
    "annotations-TOTAL_FORMS": "0",
    "annotations-INITIAL_FORMS": "0",
    "annotations-MIN_NUM_FORMS": "0",
    "annotations-MAX_NUM_FORMS": "1000",
}


def test_a_superuser_deletes_a_big_session_from_a_short_summary_and_rollups_follow(
        project, django_capture_on_commit_callbacks):
    big = store(project, big_payload("big", operations=3_000, api_calls=20))
    store(project, script_payload("kept", episode="ep002"))
    root = logged_in(person("root", superuser=True))
    url = admin_url("session", "delete", big.pk)

    summary = root.get(url)
    assert summary.status_code == 200
    assert len(summary.content) < 50_000  # counts, not 3,000 operation lines
    assert dict(summary.context["model_count"])["operations"] == 3_000
    with django_capture_on_commit_callbacks(execute=True):
        assert root.post(url, {"post": "yes"}).status_code == 302

    assert list(Session.objects.values_list("external_id", flat=True)) == ["kept"]
    assert set(EpisodeCost.objects.values_list("episode", flat=True)) == {"ep002"}


def test_an_editor_may_not_delete_sessions(editor, project):
    session = store(project, script_payload("s1"))

    assert editor.post(admin_url("session", "delete", session.pk), {"post": "yes"}
                       ).status_code == 403
    assert Session.objects.exists()


def test_a_superuser_deletes_selected_sessions_with_the_action(project):
    sessions = [store(project, script_payload(f"s{n}")) for n in range(3)]
    root = logged_in(person("root", superuser=True))

    assert run_action(root, "delete_selected", sessions[:2]).status_code == 200  # confirm
    response = run_action(root, "delete_selected", sessions[:2], post="yes")

    assert response.status_code == 302
    assert list(Session.objects.values_list("external_id", flat=True)) == ["s2"]


def test_annotations_keep_the_dashboards_length_limit(editor, project):
    session = store(project, script_payload("s1"))

    response = editor.post(admin_url("session", "change", session.pk), {
        "episode": session.episode_id, "tags": "pilot", **NO_ANNOTATIONS,
        "annotations-TOTAL_FORMS": "1", "annotations-0-text": "x" * 5001,
    })

    assert response.status_code == 200
    assert not Annotation.objects.exists()
