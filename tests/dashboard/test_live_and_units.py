"""Producer units (per scene, per dialogue line, parallel speedup) and live running pages."""

from datetime import UTC, datetime, timedelta

import pytest

from metrics.dashboard.parallelism import parallel_speedup
from tests.dashboard.world import build_world, run_payload, send

pytestmark = pytest.mark.django_db


def _at(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat()


def test_three_scenes_at_once_are_a_threefold_speedup(api):
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    payload = run_payload("parallel", episode="ep070", started_at=start, scenes=0)
    payload["session"]["ended_at"] = _at(start, 10)
    payload["operations"] = [
        {"id": "root", "name": "generate_full_script", "started_at": _at(start, 0),
         "ended_at": _at(start, 10), "duration_s": 10.0, "success": True},
        *({"id": f"s{n}", "parent_id": "root", "name": "scene_generation",
           "started_at": _at(start, 1), "ended_at": _at(start, 7), "duration_s": 6.0,
           "success": True} for n in range(3)),
    ]
    session = send(api, payload)

    speedup = parallel_speedup(session)

    assert speedup["session"] == pytest.approx(18 / 10)  # leaf work over the wall time
    assert dict(speedup["by_name"])["scene_generation"] == pytest.approx(18 / 6)


def test_the_session_page_shows_cost_and_time_per_scene_and_dialogue_line(viewer, api):
    session = build_world(api)["ep001_run1"]  # 3 scenes, 42 dialogue lines

    response = viewer.get("/sessions/ep001_run1/")
    content = response.content.decode()

    units = response.context["units"]
    assert units["cost_per_scene_usd"] == pytest.approx(float(session.cost_usd) / 3)
    assert units["seconds_per_line"] == pytest.approx(session.duration_s / 42)
    assert f"${float(session.cost_usd) / 3:,.4f}" in content
    assert f"{session.duration_s / 3:,.1f}s each" in content


def test_the_session_page_shows_the_generators_peak_memory_in_mb(viewer, api):
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    reported = run_payload("reported", episode="ep071", started_at=start)
    reported["session"]["peak_memory_bytes"] = 312_450_000
    send(api, reported)
    send(api, run_payload("silent", episode="ep072", started_at=start))

    assert "312.4 MB" in viewer.get("/sessions/reported/").content.decode()
    silent = viewer.get("/sessions/silent/").content.decode()
    assert "not reported by this generator's SDK" in silent


def test_a_running_page_refreshes_its_progress_and_reloads_once_finished(viewer, api):
    build_world(api)
    started = datetime.now(UTC) - timedelta(seconds=5)
    send(api, run_payload("live", episode="ep004", started_at=started, status="running"))

    page = viewer.get("/sessions/live/").content.decode()
    fragment = viewer.get("/sessions/live/progress/")
    running = viewer.get("/running/").content.decode()

    assert 'data-refresh="/sessions/live/progress/"' in page
    assert fragment.status_code == 200 and "of the work" in fragment.content.decode()
    assert "X-Perfmon-Finished" not in fragment
    assert "live" in running and "<html" not in running
    send(api, run_payload("live", episode="ep004", started_at=started))  # it finished
    finished = viewer.get("/sessions/live/progress/")
    assert finished["X-Perfmon-Finished"] == "1"


def test_a_workflow_with_few_past_runs_says_it_is_not_sure(viewer, api):
    now = datetime.now(UTC)
    send(api, run_payload("past1", episode="ep080", started_at=now - timedelta(hours=1)))
    send(api, run_payload("live2", episode="ep081", started_at=now - timedelta(seconds=3),
                          status="running"))

    fragment = viewer.get("/sessions/live2/progress/").content.decode()

    assert "Not sure" in fragment and "only 1 past run" in fragment
