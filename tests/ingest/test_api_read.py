"""GET routes: session list with filters and cursor paging, detail, and episode totals."""

from datetime import timedelta

import pytest

from tests.factories import T0, api_call, operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_episodes(api):
    for n, (episode, workflow, status) in enumerate([
        ("ep001", "script_generation", "completed"),
        ("ep001", "script_generation", "failed"),
        ("ep002", "comedy_pass", "completed"),
        ("ep003", "script_generation", "running"),
    ]):
        payload = script_payload(f"run{n}", episode=episode, status=status,
                                 started_at=T0 + timedelta(hours=n))
        payload["session"]["workflow"] = workflow
        if status == "running":
            payload["session"]["ended_at"] = None
        api.post("/sessions", payload)


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["items"]]


def test_list_is_newest_first(api, three_episodes):
    assert ids(api.get("/sessions")) == ["run3", "run2", "run1", "run0"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"episode": "ep001"}, ["run1", "run0"]),
    ({"workflow": "comedy_pass"}, ["run2"]),
    ({"status": "failed"}, ["run1"]),
    ({"since": (T0 + timedelta(hours=2)).isoformat()}, ["run3", "run2"]),
    ({"until": (T0 + timedelta(hours=1)).isoformat()}, ["run0"]),
    ({"episode": "ep001", "status": "completed"}, ["run0"]),
])
def test_list_filters(api, three_episodes, params, expected):
    assert ids(api.get("/sessions", **params)) == expected


def test_cursor_pages_through_everything_once(api):
    for n in range(7):
        # two sessions share each start time, so the cursor must break ties
        api.post("/sessions", session_payload(f"s{n}", started_at=T0 + timedelta(hours=n // 2)))

    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/sessions", **params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == [f"s{n}" for n in range(7)]
    assert len(seen) == 7


def test_a_cursor_not_issued_by_the_api_is_400(api):
    assert api.get("/sessions", cursor="!!garbage!!").status_code == 400


def test_limit_is_bounded(api):
    assert api.get("/sessions", limit=1000).status_code == 422


def test_detail_has_the_documented_fields(api, django_capture_on_commit_callbacks):
    calls = [api_call("c1", operation_id="scene0", cost_usd=0.5, error=True)]
    payload = script_payload("s1", scenes=2)
    payload["api_calls"] = calls
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/sessions", payload)

    detail = api.get("/sessions/s1").json()

    assert {"id", "episode", "workflow", "release", "environment", "status", "started_at",
            "ended_at", "duration_s", "cache", "api", "counters", "tags", "metadata",
            "bottlenecks", "slowest_operations"} <= set(detail)
    assert detail["cache"] == {"hits": 27, "misses": 13, "hit_rate": pytest.approx(0.675)}
    assert detail["api"]["calls"] == 1
    assert detail["api"]["errors"] == 1
    assert detail["api"]["cost_usd"] == pytest.approx(0.5)
    assert detail["slowest_operations"][0]["name"] == "generate_full_script"
    assert detail["bottlenecks"][0]["name"] == "scene_generation"
    assert "operations" not in detail or detail["operations"] is None


def test_slowest_operations_are_the_top_five_by_duration(api):
    ops = [operation(f"o{n}", f"step{n}", start_s=n * 10, duration_s=float(n)) for n in range(8)]
    api.post("/sessions", session_payload("s1", operations=ops))

    slowest = api.get("/sessions/s1").json()["slowest_operations"]

    assert [op["name"] for op in slowest] == ["step7", "step6", "step5", "step4", "step3"]


def test_include_adds_operations_and_api_calls(api):
    api.post("/sessions", script_payload("s1", scenes=2, calls_per_scene=3))

    detail = api.get("/sessions/s1", include="operations,api_calls").json()

    assert len(detail["operations"]) == 3
    assert len(detail["api_calls"]) == 6
    scene = next(op for op in detail["operations"] if op["id"] == "scene1")
    assert scene["parent_id"] == "root"
    assert scene["metadata"] == {"scene": 1}
    assert detail["api_calls"][0]["cost_source"] == "pending"


def test_include_with_an_unknown_part_is_422(api):
    api.post("/sessions", script_payload("s1"))
    assert api.get("/sessions/s1", include="secrets").status_code == 422


def test_unknown_session_is_404(api):
    assert api.get("/sessions/nope").status_code == 404


def test_episode_totals_are_summed_over_its_sessions(api):
    api.post("/sessions", session_payload("a", episode="ep001", duration_s=10, cache=(3, 1),
                                          api_calls=[api_call("c", cost_usd=0.25)]))
    api.post("/sessions", session_payload("b", episode="ep001", duration_s=20, cache=(1, 3),
                                          api_calls=[api_call("c", cost_usd=0.5)]))
    api.post("/sessions", session_payload("c", episode="ep002", duration_s=5))

    episode = api.get("/episodes/ep001").json()

    assert episode["sessions"] == 2
    assert episode["duration_s"] == pytest.approx(30)
    assert episode["total_tokens"] == 1660
    assert episode["cost_usd"] == pytest.approx(0.75)
    assert episode["cache_hit_rate"] == pytest.approx(0.5)
    assert [e["code"] for e in api.get("/episodes").json()["items"]] == ["ep001", "ep002"]


def test_episodes_page_with_a_cursor(api):
    for n in range(5):
        api.post("/sessions", session_payload(f"s{n}", episode=f"ep00{n}"))

    first = api.get("/episodes", limit=2).json()
    second = api.get("/episodes", limit=2, cursor=first["next_cursor"]).json()

    assert [e["code"] for e in first["items"]] == ["ep000", "ep001"]
    assert [e["code"] for e in second["items"]] == ["ep002", "ep003"]


def test_unknown_episode_is_404(api):
    assert api.get("/episodes/ep999").status_code == 404
