"""The session page: waterfall, analysis results, progress of a running session."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from metrics.analysis.analyze import analyze_session
from metrics.dashboard.waterfall import DRAW_ALL_UP_TO, FAILED, FIRST, SLOWEST
from metrics.models import Session
from tests.dashboard.world import build_world, run_payload, send, user_with
from tests.factories import big_payload

pytestmark = pytest.mark.django_db


def waterfall(content: bytes) -> dict:
    match = re.search(rb'id="fig-waterfall">(.*?)</script>', content, re.S)
    assert match
    return json.loads(match.group(1))


def test_the_waterfall_shows_the_tree_with_failures_in_their_own_colour(viewer, api):
    send(api, run_payload("s1", episode="ep001", started_at=datetime.now(UTC), failed_scene=1))

    fig = waterfall(viewer.get("/sessions/s1/").content)

    labels = fig["layout"]["yaxis"]["ticktext"]
    assert labels[0] == "generate_full_script"
    assert labels[1].endswith("scene_generation") and labels[1].startswith("\u2003\u2514")
    assert labels[2].startswith("\u2003\u2003\u2514") and labels[2].endswith("dialogue_writing")
    traces = {trace["name"]: trace for trace in fig["data"]}
    assert set(traces) == {"succeeded", "failed"}
    assert traces["failed"]["y"] == [labels.index("\u2003\u2514 scene_generation", 3)]
    assert "RateLimitError" in traces["failed"]["customdata"][0][2]
    assert "INT. KITCHEN" in traces["succeeded"]["customdata"][1][2]  # metadata on hover


def test_a_huge_session_draws_a_bounded_waterfall(viewer, api, django_assert_max_num_queries):
    payload = big_payload("huge", operations=3000, api_calls=20)
    for i in (5, 1500, 2900):
        payload["operations"][i]["success"] = False
    payload["operations"][2000]["duration_s"] = 90.0
    api.post("/sessions", payload)
    analyze_session(Session.objects.get())

    with django_assert_max_num_queries(40):
        response = viewer.get("/sessions/huge/")

    flow = response.context["waterfall"]
    assert flow.total == 3000 and flow.partial
    assert len(flow.bars) <= FIRST + SLOWEST + FAILED + 1
    fig = waterfall(response.content)
    drawn = sum(len(trace["y"]) for trace in fig["data"])
    assert drawn == len(flow.bars) < DRAW_ALL_UP_TO / 2
    # The 2999 same-named siblings are one bar, with the slowest and failed ones beside it.
    assert [bar.label for bar in flow.bars if bar.group] == ["dialogue_line \u00d72999"]
    assert flow.grouped == 2999
    # 3 failed operations and the failed group they belong to
    assert len(next(t for t in fig["data"] if t["name"] == "failed")["y"]) == 4
    assert any(bar.duration_s == 90.0 for bar in flow.bars)  # the slow one is drawn
    assert flow.bars[0].label == "generate_full_script"  # its parent too
    assert "of 3000 operations" in response.content.decode()
    assert response.context["summary"] is None or len(flow.bars) < 3000


def test_every_operation_exports_as_csv(viewer, api):
    api.post("/sessions", big_payload("huge", operations=500, api_calls=0))

    response = viewer.get("/sessions/huge/?export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert len(rows) == 501 and rows[0][:3] == ["id", "parent_id", "name"]


def test_the_page_shows_findings_regressions_budgets_and_calls(viewer, api):
    sessions = build_world(api)
    assert sessions["ep002_run3"].regressions.exists()

    response = viewer.get("/sessions/ep003_run1/")
    content = response.content.decode()

    assert {m["label"] for m in response.context["by_model"]} == {
        "openai/gpt-4o-mini", "openai/house-model"}
    assert "unpriced (3)" in content  # house-model's cost: not $0.0000
    assert "incomplete: 3 unpriced calls not in the total" in content  # the cost card
    assert "Calls to models with no price" in content  # the finding
    assert "cache <strong>llm</strong>" in content
    assert "Full episode in under 5 minutes" in content
    regressed = viewer.get("/sessions/ep002_run3/").content.decode()
    assert "Operation self time: scene_generation" in regressed


def test_a_running_session_shows_its_progress(viewer, api):
    build_world(api)
    started = datetime.now(UTC) - timedelta(seconds=5)
    send(api, run_payload("live", episode="ep004", started_at=started, status="running"))

    response = viewer.get("/sessions/live/")

    progress = response.context["progress"]
    assert progress is not None and progress.expected_finish > started
    assert "expected to finish at" in response.content.decode()
    fig = waterfall(response.content)
    assert {trace["name"] for trace in fig["data"]} == {"succeeded", "running"}


def test_the_admin_link_is_shown_to_staff(client, api):
    send(api, run_payload("s1", episode="ep001", started_at=datetime.now(UTC)))
    client.force_login(user_with("view_session"))
    assert "open in the admin" not in client.get("/sessions/s1/").content.decode()

    User.objects.filter(username="producer").update(is_staff=True)
    content = client.get("/sessions/s1/").content.decode()
    assert f'href="/admin/metrics/session/{Session.objects.get().pk}/change/"' in content


def test_the_session_page_query_count_does_not_grow_with_the_session(
        viewer, api, django_assert_max_num_queries):
    send(api, run_payload("small", episode="ep001", started_at=datetime.now(UTC)))
    with django_assert_max_num_queries(40) as small:
        viewer.get("/sessions/small/")
    queries = len(small.captured_queries)
    send(api, run_payload("bigger", episode="ep001", started_at=datetime.now(UTC),
                          scenes=40, failed_scene=3))

    with django_assert_max_num_queries(queries):
        viewer.get("/sessions/bigger/")


def test_a_group_of_siblings_opens_on_demand(viewer, api):
    api.post("/sessions", big_payload("huge", operations=800, api_calls=0))
    analyze_session(Session.objects.get())

    response = viewer.get("/sessions/huge/")
    fig = waterfall(response.content)
    [url] = fig["layout"]["meta"]["links"]["detail"].values()
    details = viewer.get(url.replace("&amp;", "&"))

    assert url.startswith("/sessions/huge/operations/?parent=r&name=dialogue_line")
    rows = details.context["rows"]
    assert len(rows) == 500 and rows[0]["client_id"] == "o0" and rows[1]["start_s"] == 0.5
    assert "(the first 500; the CSV has them all)" in details.content.decode()
