"""Episode figures are each episode's accepted take, with failed and cold runs apart."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import Episode, Session
from tests.dashboard.world import build_world, run_payload, send, user_with

pytestmark = pytest.mark.django_db


def _row(client, code: str) -> dict:
    rows = client.get("/episodes/").context["rows"]
    return next(row for row in rows if row["code"] == code)


def three_takes(api) -> dict[str, Session]:
    """ep060: two completed runs, then a short failed one (it looks fastest and cheapest)."""
    now = datetime.now(UTC)
    return {
        "ep060_run1": send(api, run_payload("ep060_run1", episode="ep060", scene_s=5.0,
                                            started_at=now - timedelta(hours=3))),
        "ep060_run2": send(api, run_payload("ep060_run2", episode="ep060", scene_s=6.0,
                                            started_at=now - timedelta(hours=2))),
        "ep060_run3": send(api, run_payload("ep060_run3", episode="ep060", scene_s=1.0,
                                            scenes=1, status="failed", failed_scene=0,
                                            started_at=now - timedelta(hours=1))),
    }


def test_the_latest_completed_run_stands_for_the_episode_not_the_failed_one(viewer, api):
    sessions = three_takes(api)
    run2 = sessions["ep060_run2"]

    row = _row(viewer, "ep060")

    assert sessions["ep060_run3"].duration_s < run2.duration_s  # the failed run is shortest
    assert row["take_id"] == "ep060_run2"
    assert row["take_duration_s"] == run2.duration_s == 22.0
    assert row["take_cost_usd"] == run2.cost_usd
    assert row["take_tokens"] == run2.total_tokens == 3 * 2 * 950
    assert row["failed_runs"] == 1 and row["runs"] == 3


def test_the_overview_trend_points_are_the_accepted_takes(viewer, api):
    sessions = three_takes(api)

    figures = viewer.get("/").context["charts"]
    duration = json.loads(figures["duration"])["data"][0]
    cost = json.loads(figures["cost"])["data"]

    assert dict(zip(duration["x"], duration["y"], strict=True))["ep060"] == 22.0
    # The cost bar is what the take cost, not the failed run averaged in.
    assert sum(trace["y"][trace["x"].index("ep060")] for trace in cost) == pytest.approx(
        float(sessions["ep060_run2"].cost_usd))


def test_an_editor_accepts_a_take_and_the_episode_figures_follow(client, api):
    sessions = build_world(api)
    editor = user_with("view_session", "change_session", name="editor")
    client.force_login(editor)

    response = client.post("/sessions/ep002_run1/accept/")

    assert response.status_code == 302
    assert Episode.objects.get(code="ep002").accepted_session_id == sessions["ep002_run1"].pk
    row = _row(client, "ep002")
    assert row["take_id"] == "ep002_run1"
    assert row["take_duration_s"] == sessions["ep002_run1"].duration_s
    page = client.get("/episodes/ep002/").content.decode()
    assert "chosen by an editor" in page


def test_a_producer_cannot_choose_the_take_nor_can_a_failed_run_be_it(viewer, client, api):
    three_takes(api)

    assert viewer.post("/sessions/ep060_run1/accept/").status_code == 403
    client.force_login(user_with("view_session", "change_session", name="editor"))
    client.post("/sessions/ep060_run3/accept/")
    assert Episode.objects.get(code="ep060").accepted_session_id is None


def test_cold_runs_are_counted_apart(viewer, api):
    payload = run_payload("cold1", episode="ep050",
                          started_at=datetime.now(UTC) - timedelta(hours=2))
    payload["session"]["cache"] = {"hits": 0, "misses": 30, "by_name": {}}
    send(api, payload)
    send(api, run_payload("warm1", episode="ep050",
                          started_at=datetime.now(UTC) - timedelta(hours=1)))

    row = _row(viewer, "ep050")

    assert row["cold_runs"] == 1 and row["take_id"] == "warm1"
    assert row["take_cache_hit_rate"] == pytest.approx(20 / 30)


def test_the_episode_page_shows_the_takes_cost_and_time_per_scene_and_line(viewer, api):
    run2 = three_takes(api)["ep060_run2"]  # 3 scenes, 42 dialogue lines

    response = viewer.get("/episodes/ep060/")

    units = response.context["take_units"]
    assert units["cost_per_scene_usd"] == pytest.approx(float(run2.cost_usd) / 3)
    assert units["seconds_per_line"] == pytest.approx(22.0 / 42)
    assert f"{22.0 / 3:,.1f}s each" in response.content.decode()
