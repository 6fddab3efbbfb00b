"""The overview: KPI cards, trends across episodes, running and latest sessions."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from metrics.models import BudgetCheck, Session
from tests.dashboard.world import EPISODES, build_world, run_payload, send

pytestmark = pytest.mark.django_db


def figure(content: bytes, name: str) -> dict:
    match = re.search(rb'<script type="application/json" id="fig-%s">(.*?)</script>'
                      % name.encode(), content, re.S)
    assert match, f"no figure {name}"
    return json.loads(match.group(1))


def test_the_overview_requires_login_and_a_role(client):
    assert client.get("/")["Location"].startswith("/accounts/login/")
    client.force_login(User.objects.create_user("nobody", password="a-long-test-password"))
    assert client.get("/").status_code == 403


def test_a_fresh_install_explains_how_to_send_a_first_session(viewer, project):
    content = viewer.get("/").content.decode()

    assert "No sessions yet" in content
    assert "create_api_key" in content and "/api/v1/sessions" in content
    assert "data-figure" not in content  # no blank charts


def test_kpi_cards_sum_the_period(viewer, api):
    sessions = build_world(api)
    old = send(api, run_payload("old", episode="ep000",
                                started_at=datetime.now(UTC) - timedelta(days=60)))

    response = viewer.get("/")
    kpis = response.context["kpis"]

    in_period = list(sessions.values())
    assert kpis["runs"] == len(in_period) and kpis["episodes"] == len(EPISODES)
    assert kpis["cost_usd"] == sum(s.cost_usd for s in in_period)
    durations = sorted(s.duration_s for s in in_period)
    assert kpis["median_duration_s"] == durations[(len(durations) + 1) // 2 - 1]
    assert kpis["api_errors"] == 1 and kpis["api_calls"] == 6 * len(in_period)
    assert kpis["cache_hit_rate"] == pytest.approx(2 / 3)
    assert kpis["budget_violations"] == BudgetCheck.objects.filter(passed=False).exclude(
        session=old).count() > 0
    assert viewer.get("/?period=all").context["kpis"]["runs"] == len(in_period) + 1


def test_trend_charts_have_one_point_per_episode_oldest_first(viewer, api):
    build_world(api)

    content = viewer.get("/").content

    duration = figure(content, "duration")
    assert duration["data"][0]["x"] == list(EPISODES)
    assert duration["data"][0]["y"][0] < duration["data"][0]["y"][-1]  # later runs are slower
    cost = figure(content, "cost")
    assert {trace["name"] for trace in cost["data"]} == {
        "openai/gpt-4o", "openai/gpt-4o-mini", "openai/house-model"}
    assert figure(content, "cache")["data"][0]["y"] == [pytest.approx(200 / 3)] * 3
    assert figure(content, "tokens")["data"][0]["y"] == [5700.0] * 3


def test_filters_narrow_every_figure_and_stay_in_the_links(viewer, api):
    build_world(api)
    send(api, run_payload("staging1", episode="ep010", started_at=datetime.now(UTC),
                          environment="staging", tags=["nightly"]))

    by_env = viewer.get("/?environment=staging")
    by_tag = viewer.get("/?tag=nightly")
    by_release = viewer.get("/?release=generator+1.5.0")

    assert by_env.context["kpis"]["runs"] == 1 and by_tag.context["kpis"]["runs"] == 1
    assert by_release.context["kpis"]["runs"] == 3
    assert figure(by_release.content, "duration")["data"][0]["x"] == ["ep002"]
    assert 'href="/episodes/?release=generator+1.5.0"' in by_release.content.decode()
    assert viewer.get("/?tag=nothing").context["kpis"]["runs"] == 0
    assert "Nothing matches these filters" in viewer.get("/?tag=nothing").content.decode()


def test_running_sessions_show_progress_and_an_expected_finish(viewer, api):
    build_world(api)  # completed script_generation runs of 16 to 31 s
    started = datetime.now(UTC) - timedelta(seconds=10)
    send(api, run_payload("live", episode="ep004", started_at=started, status="running"))

    response = viewer.get("/")
    (progress,) = response.context["running"]

    durations = sorted(Session.objects.filter(status="completed")
                       .values_list("duration_s", flat=True))
    median = durations[(len(durations) + 1) // 2 - 1]
    # The live run finished 6 operations (3 scenes, 3 dialogues) of the 7 each past run had:
    # the work left is 1/7 of the past runs' median duration.
    assert progress.session.external_id == "live" and progress.based_on == len(durations)
    assert progress.operations_done == 6 and progress.percent == 85
    assert progress.remaining_s == pytest.approx(median / 7)
    assert progress.expected_finish == started + timedelta(
        seconds=progress.elapsed_s + progress.remaining_s)
    low, high = progress.finish_range
    assert low <= progress.expected_finish <= high and progress.sure and not progress.overdue
    assert "6 of ~7 operations done, at the pace of the last 9 completed script_generation" \
        in response.content.decode()


def test_a_workflow_without_completed_runs_has_no_estimate(viewer, api):
    send(api, run_payload("live", episode="ep001", started_at=datetime.now(UTC),
                          status="running"))

    (progress,) = viewer.get("/").context["running"]

    assert progress.expected_s is None and progress.percent is None


def test_latest_sessions_export_as_csv(viewer, api):
    build_world(api)

    response = viewer.get("/?export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert response["Content-Disposition"] == 'attachment; filename="sessions.csv"'
    assert rows[0][:3] == ["session", "episode", "workflow"]
    assert {row[0] for row in rows[1:]} == set(Session.objects.values_list("external_id",
                                                                          flat=True))


def test_projects_are_shown_one_at_a_time_with_a_switcher(viewer_of_both, api, other_api):
    send(api, run_payload("ours", episode="ep001", started_at=datetime.now(UTC)))
    send(other_api, run_payload("theirs", episode="ep001", started_at=datetime.now(UTC)))

    ours = viewer_of_both.get("/").content.decode()
    theirs = viewer_of_both.get("/?project=other-show").content.decode()

    assert "ours" in ours and "theirs" not in ours
    assert "theirs" in theirs and ">ours<" not in theirs
    assert 'name="project"' in ours and "Other show" in ours
    assert viewer_of_both.get("/?project=nope").status_code == 404


def test_the_overview_runs_a_bounded_number_of_queries(viewer, api,
                                                       django_assert_max_num_queries):
    build_world(api)
    now = datetime.now(UTC)
    send(api, run_payload("live", episode="ep004", started_at=now, status="running"))
    with django_assert_max_num_queries(22) as small:
        viewer.get("/")
    queries = len(small.captured_queries)  # now: the log is a bounded deque
    for i in range(30):
        send(api, run_payload(f"more{i}", episode=f"ep{100 + i}",
                              started_at=now - timedelta(hours=i)))
    send(api, run_payload("live2", episode="ep005", started_at=now, status="running"))
    with django_assert_max_num_queries(queries):
        viewer.get("/")
