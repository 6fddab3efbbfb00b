"""A snapshot split over several requests finishes the session only once every part arrived."""

import pytest

from metrics.models import Operation, Session
from tests.factories import operation, session_payload

pytestmark = pytest.mark.django_db


def part(index: int, count: int = 3, *, sequence: int = 7, status: str = "completed") -> dict:
    payload = session_payload(
        "big", status=status, duration_s=None if status == "running" else 60.0,
        operations=[operation(f"op{index}", "scene_generation", start_s=index,
                              duration_s=1.0)],
        sequence=sequence)
    payload["session"]["part"] = {"index": index, "count": count}
    return payload


def stored() -> Session:
    return Session.objects.get(external_id="big")


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2), (2, 3, 1)])
def test_the_session_is_running_until_its_last_part_arrives_in_any_order(api, order):
    for n, index in enumerate(order, 1):
        assert api.post("/sessions", part(index)).status_code in (200, 201)
        session = stored()
        if n < len(order):
            assert (session.status, session.ended_at, session.duration_s) == (
                "running", None, None)

    session = stored()
    assert (session.status, session.duration_s) == ("completed", 60.0)
    assert session.split_parts == {"sequence": 7, "count": 3, "received": [1, 2, 3]}
    assert Operation.objects.count() == 3


def test_the_session_page_says_parts_are_still_arriving(api, client):
    from tests.dashboard.world import user_with

    api.post("/sessions", part(2))
    client.force_login(user_with("view_session"))

    content = client.get("/sessions/big/").content.decode()

    assert stored().missing_parts == 2
    assert "sent in 3 parts and 2 have not arrived yet" in content


def test_a_resent_part_does_not_count_twice(api):
    api.post("/sessions", part(1, 2))
    api.post("/sessions", part(1, 2))

    assert stored().status == "running"
    api.post("/sessions", part(2, 2))
    assert stored().status == "completed"


def test_a_failed_run_in_parts_fails_only_once_complete(api):
    api.post("/sessions", part(2, 2, status="failed"))
    assert stored().status == "running"

    api.post("/sessions", part(1, 2, status="failed"))
    assert stored().status == "failed"


def test_parts_of_an_earlier_snapshot_do_not_complete_a_newer_split(api):
    api.post("/sessions", part(1, 2, sequence=5))
    api.post("/sessions", part(2, 2, sequence=9))  # a newer snapshot, split again

    assert stored().status == "running"
    assert stored().split_parts["received"] == [2]


@pytest.mark.parametrize(("header", "path"), [
    ({"index": 3, "count": 2}, ["session", "part"]),
    ({"index": 0, "count": 2}, ["session", "part", "index"]),
    ({"index": 1, "count": 1}, ["session", "part", "count"]),
    ({"index": 1, "count": True}, ["session", "part", "count"]),
])
def test_a_malformed_part_is_refused_with_its_field(api, header, path):
    payload = part(1)
    payload["session"]["part"] = header

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-len(path):] == path
    assert not Session.objects.exists()


def test_a_part_without_a_sequence_is_refused(api):
    payload = part(1)
    del payload["session"]["sequence"]

    assert api.post("/sessions", payload).status_code == 422
