"""POST /api/v1/batch stores each session on its own and reports a result per item."""

import pytest

from metrics.models import Session
from tests.factories import script_payload, session_payload

pytestmark = pytest.mark.django_db


def test_each_item_is_stored_or_rejected_on_its_own(api):
    bad = session_payload("broken")
    bad["session"]["started_at"] = "not a time"
    items = [script_payload("a"), bad, script_payload("b")]

    response = api.post("/batch", {"sessions": items})

    assert response.status_code == 200
    body = response.json()
    assert (body["stored"], body["rejected"]) == (2, 1)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [(0, "stored"), (1, "error"), (2, "stored")]
    assert body["results"][1]["errors"][0]["loc"] == ["session", "started_at"]
    assert body["results"][0]["url"].endswith("/sessions/a/")
    assert sorted(Session.objects.values_list("external_id", flat=True)) == ["a", "b"]


def test_resending_a_batch_merges_every_item(api):
    items = [script_payload("a"), script_payload("b")]
    api.post("/batch", {"sessions": items})

    body = api.post("/batch", {"sessions": items}).json()

    assert [r["created"] for r in body["results"]] == [False, False]
    assert Session.objects.count() == 2


def test_more_than_100_sessions_is_422(api):
    response = api.post("/batch", {"sessions": [session_payload(f"s{n}") for n in range(101)]})

    assert response.status_code == 422
    assert Session.objects.count() == 0


def test_an_empty_batch_is_422(api):
    assert api.post("/batch", {"sessions": []}).status_code == 422


def test_a_batch_can_be_gzipped(api):
    response = api.post("/batch", {"sessions": [script_payload("z")]}, gzipped=True)

    assert response.json()["stored"] == 1
