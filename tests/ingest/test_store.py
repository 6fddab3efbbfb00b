"""POST /api/v1/sessions stores a payload, and resending merges instead of duplicating."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from metrics.models import ApiCall, Episode, Operation, Session
from tests.factories import api_call, operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


def snapshot(session_id: str) -> dict:
    session = Session.objects.get(external_id=session_id)
    ignore = {"merged_at", "analyzed_at", "id"}
    return {
        "session": {k: v for k, v in model_to_dict(session).items() if k not in ignore},
        "operations": list(Operation.objects.filter(session=session).order_by("client_id")
                           .values().values_list("client_id", "parent_id", "name", "duration_s",
                                                 "success", "metadata", "cache_hits")),
        "api_calls": list(ApiCall.objects.filter(session=session).order_by("client_id")
                          .values_list("client_id", "operation_id", "total_tokens", "cost_usd",
                                       "cost_source")),
    }


def test_new_session_is_created_with_201_and_its_dashboard_url(api):
    response = api.post("/sessions", script_payload("ep001_run1"))

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "ep001_run1"
    assert body["created"] is True
    assert body["url"] == "http://testserver/sessions/ep001_run1/"


def test_stored_session_keeps_every_field_operation_and_call(api):
    api.post("/sessions", script_payload("ep001_run1", scenes=3, calls_per_scene=2))

    session = Session.objects.get(external_id="ep001_run1")
    assert session.episode.code == "ep001"
    assert (session.workflow, session.release, session.host) == (
        "script_generation", "generator 1.4.2", "render-01")
    assert session.status == "completed"
    assert session.duration_s == pytest.approx(32.0)
    assert session.counters == {"scenes_generated": 9}
    assert session.tags == ["pilot"]
    assert session.metadata == {"model_family": "gpt"}
    assert session.operations.count() == 4
    assert session.api_calls.count() == 6
    scene = session.operations.get(client_id="scene1")
    assert scene.parent.client_id == "root"
    assert scene.metadata == {"scene": 1}
    assert session.api_calls.get(client_id="scene1-c0").operation == scene


def test_denormalised_totals_match_the_calls(api):
    calls = [
        api_call("c1", prompt_tokens=100, completion_tokens=20, cost_usd=0.5),
        api_call("c2", prompt_tokens=300, completion_tokens=40, cost_usd=0.25, error=True),
        api_call("c3", prompt_tokens=50, completion_tokens=5),
    ]
    api.post("/sessions", session_payload("s1", api_calls=calls, cache=(3, 1)))

    session = Session.objects.get(external_id="s1")
    assert session.api_calls_count == 3
    assert session.api_errors_count == 1
    assert session.prompt_tokens == 450
    assert session.completion_tokens == 65
    assert session.total_tokens == 515
    assert session.cost_usd == Decimal("0.75")
    assert session.cache_hit_rate == pytest.approx(0.75)


@pytest.mark.parametrize("cost", [None, 0.1])
def test_a_new_sessions_totals_are_what_the_database_reads_back(project, cost):
    # A session created by one payload has its totals counted from the payload, not
    # re-read (ingest.services._fresh_totals); the analysis, which re-reads them, is not
    # run here, so this compares the counted totals with a fresh read of the rows.
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.totals import TOTAL_FIELDS, refresh_session_totals

    calls = [
        api_call("c1", operation_id="root", prompt_tokens=100, completion_tokens=20),
        api_call("c2", prompt_tokens=300, completion_tokens=40, error=True, cost_usd=cost),
    ]
    del calls[1]["total_tokens"]
    payload = SessionPayload.model_validate(script_payload("fresh1", scenes=2) | {
        "api_calls": calls})
    stored = store_payload(project, payload).session
    counted = {name: getattr(Session.objects.get(pk=stored.pk), name) for name in TOTAL_FIELDS}
    refresh_session_totals(stored)
    read_back = {name: getattr(Session.objects.get(pk=stored.pk), name) for name in TOTAL_FIELDS}
    assert counted == read_back
    assert counted["operations_count"] == 3 and counted["api_calls_count"] == 2


def test_total_tokens_default_to_prompt_plus_completion(api):
    call = api_call("c1", prompt_tokens=10, completion_tokens=5)
    del call["total_tokens"]
    api.post("/sessions", session_payload("s1", api_calls=[call]))

    assert ApiCall.objects.get().total_tokens == 15


def test_resending_the_same_payload_answers_200_and_changes_nothing(api):
    payload = script_payload("ep001_run1")
    api.post("/sessions", payload)
    before = snapshot("ep001_run1")

    response = api.post("/sessions", payload)

    assert response.status_code == 200
    assert response.json()["created"] is False
    assert snapshot("ep001_run1") == before
    assert Session.objects.count() == 1


def test_running_session_flushes_in_parts(api):
    first = session_payload(
        "s1", status="running", duration_s=None,
        operations=[operation("a", "scene_generation", start_s=1, duration_s=2, parent_id="root")],
        api_calls=[api_call("c1", operation_id="a")],
    )
    second = session_payload(
        "s1", status="completed", duration_s=12.0,
        operations=[
            operation("b", "scene_generation", start_s=4, duration_s=3, parent_id="root"),
            operation("root", "generate_full_script", start_s=0, duration_s=12),
        ],
        api_calls=[api_call("c2", operation_id="b")],
    )

    assert api.post("/sessions", first).status_code == 201
    assert Session.objects.get().status == "running"
    assert api.post("/sessions", second).status_code == 200

    session = Session.objects.get()
    assert session.status == "completed"
    assert session.duration_s == pytest.approx(12.0)
    assert sorted(session.operations.values_list("client_id", flat=True)) == ["a", "b", "root"]
    # the child that arrived before its parent is linked once the parent is stored
    assert session.operations.get(client_id="a").parent.client_id == "root"
    assert session.api_calls_count == 2


def test_call_sent_before_its_operation_is_linked_when_the_operation_arrives(api):
    api.post("/sessions", session_payload("s1", status="running", duration_s=None,
                                          api_calls=[api_call("c1", operation_id="late")]))
    assert ApiCall.objects.get().operation is None

    api.post("/sessions", session_payload(
        "s1", operations=[operation("late", "dialogue", start_s=0, duration_s=1)]))

    assert ApiCall.objects.get().operation.client_id == "late"


def test_resent_operations_keep_their_rows_and_links(api):
    payload = script_payload("s1")
    api.post("/sessions", payload)
    before = dict(Operation.objects.values_list("client_id", "pk"))
    links = dict(Operation.objects.values_list("client_id", "parent__client_id"))

    api.post("/sessions", payload)

    assert dict(Operation.objects.values_list("client_id", "pk")) == before
    assert dict(Operation.objects.values_list("client_id", "parent__client_id")) == links


def test_operation_sent_running_is_completed_by_a_later_part(api):
    running = operation("root", "generate_full_script", start_s=0, duration_s=None)
    finished = operation("root", "generate_full_script", start_s=0, duration_s=12)
    api.post("/sessions", session_payload("s1", status="running", duration_s=None,
                                          operations=[running]))
    api.post("/sessions", session_payload("s1", operations=[finished]))

    op = Operation.objects.get()
    assert op.duration_s == 12
    assert op.success is True


def test_finished_session_never_goes_back_to_running(api):
    early_part = session_payload(
        "s1", status="running", duration_s=None, cache=(1, 1),
        operations=[operation("root", "generate_full_script", start_s=0, duration_s=None)],
    )
    final = session_payload(
        "s1", status="completed", duration_s=12.0, cache=(27, 13),
        operations=[operation("root", "generate_full_script", start_s=0, duration_s=12)],
    )
    api.post("/sessions", final)

    api.post("/sessions", early_part)  # a retry of an earlier flush arriving late

    session = Session.objects.get()
    assert session.status == "completed"
    assert session.duration_s == pytest.approx(12.0)
    assert (session.cache_hits, session.cache_misses) == (27, 13)
    assert Operation.objects.get().duration_s == 12


def test_merge_keeps_counter_and_metadata_keys_the_client_stopped_sending(api):
    api.post("/sessions", session_payload("s1", status="running", duration_s=None,
                                          counters={"scenes_generated": 2}, metadata={"a": 1}))
    api.post("/sessions", session_payload("s1", counters={"jokes_analyzed": 4},
                                          metadata={"b": 2}))

    session = Session.objects.get()
    assert session.counters == {"scenes_generated": 2, "jokes_analyzed": 4}
    assert session.metadata == {"a": 1, "b": 2}


def test_resend_without_cost_keeps_a_cost_priced_by_the_server(api):
    payload = session_payload("s1", api_calls=[api_call("c1", cost_usd=None)])
    api.post("/sessions", payload)
    ApiCall.objects.update(cost_usd=Decimal("0.0123"), cost_source="price_table")

    api.post("/sessions", payload)

    call = ApiCall.objects.get()
    assert (call.cost_usd, call.cost_source) == (Decimal("0.0123"), "price_table")


def test_client_cost_is_kept_and_marked_as_client_priced(api):
    api.post("/sessions", session_payload("s1", api_calls=[api_call("c1", cost_usd=0.02),
                                                           api_call("c2", cost_usd=None)]))

    sources = dict(ApiCall.objects.values_list("client_id", "cost_source"))
    assert sources == {"c1": "client", "c2": "pending"}


def test_minimal_payload_with_only_required_fields_is_stored(api):
    payload = {"schema_version": 1,
               "session": {"id": "bare", "started_at": "2026-11-20T10:00:00+01:00"}}

    response = api.post("/sessions", payload)

    assert response.status_code == 201
    session = Session.objects.get(external_id="bare")
    assert session.status == "running"
    assert session.episode is None
    assert session.started_at.utcoffset().total_seconds() == 0  # stored in UTC
    assert session.started_at.hour == 9


def test_gzip_body_is_accepted(api):
    response = api.post("/sessions", script_payload("zipped"), gzipped=True)

    assert response.status_code == 201
    assert Session.objects.get(external_id="zipped").operations.count() == 4


def test_analysis_runs_after_commit_and_finds_the_bottleneck(
    api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/sessions", script_payload("s1", scenes=3))

    session = Session.objects.get()
    assert session.analyzed_at is not None
    bottlenecks = session.operation_stats.filter(is_bottleneck=True)
    assert list(bottlenecks.values_list("name", flat=True)) == ["scene_generation"]


def test_an_editors_correction_survives_a_resend(api):
    payload = session_payload("s1", episode="ep_wrong", tags=["pilot"])
    api.post("/sessions", payload)
    session = Session.objects.get()
    session.episode = Episode.objects.create(project=session.project, code="ep_right")
    session.tags = ["reviewed"]
    session.save(update_fields=["episode", "tags", *session.mark_edited("episode", "tags")])

    api.post("/sessions", payload)  # the generator resends the uncorrected session

    session.refresh_from_db()
    assert (session.episode.code, session.tags) == ("ep_right", ["reviewed"])


def test_offsets_beyond_what_postgresql_takes_are_stored_in_utc(api):
    payload = {"schema_version": 1,
               "session": {"id": "far", "started_at": "2026-11-20T10:00:00-18:50"}}

    assert api.post("/sessions", payload).status_code == 201
    started = Session.objects.get().started_at
    assert (started.day, started.hour, started.minute) == (21, 4, 50)
    assert api.get("/sessions", since="2026-11-20T00:00:00-18:50").json()["items"]


def test_times_outside_the_years_a_monitor_means_are_422(api):
    payload = {"schema_version": 1,
               "session": {"id": "old", "started_at": "0202-05-27T11:07:46-18:50"}}

    assert api.post("/sessions", payload).status_code == 422
    assert api.get("/sessions", since="0001-01-01T00:00:00+05:00").status_code == 422
