"""A session of tens of thousands of operations: the API pages its rows."""

from datetime import timedelta

import pytest

from metrics.analysis.analyze import analyze_session
from metrics.models import ApiCall, Operation, Session
from tests.factories import T0, session_payload

pytestmark = pytest.mark.django_db

OPERATIONS = 30_000
CALLS = 2_500


@pytest.fixture
def huge(api) -> Session:
    """Stored through the API (the session row), its rows bulk-written like ingest's COPY."""
    assert api.post("/sessions", session_payload("huge", duration_s=OPERATIONS)).status_code == 201
    session = Session.objects.get(external_id="huge")
    # Several operations share each start time, so the cursor must break ties by id.
    Operation.objects.bulk_create(
        (Operation(session=session, client_id=f"o{i}", name=f"step{i % 7}",
                   started_at=T0 + timedelta(seconds=i // 3), duration_s=0.5, success=True,
                   ended_at=T0 + timedelta(seconds=i // 3 + 0.5))
         for i in range(OPERATIONS)), batch_size=5000)
    ApiCall.objects.bulk_create(
        (ApiCall(session=session, client_id=f"c{i}", provider="openai", model="gpt-4o-mini",
                 at=T0 + timedelta(seconds=i), prompt_tokens=700, completion_tokens=130,
                 total_tokens=830) for i in range(CALLS)), batch_size=5000)
    analyze_session(session)
    return Session.objects.get(pk=session.pk)


def pages(api, key: str, page_size: int) -> list[list[dict]]:
    found, cursor = [], None
    for _ in range(100):  # bounded: far more pages than the session has
        params = {"include": key, "page_size": page_size}
        if cursor:
            params[f"{key}_cursor"] = cursor
        body = api.get("/sessions/huge", **params).json()
        found.append(body[key])
        cursor = body[f"{key}_next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("paging did not end")


def test_operations_come_in_bounded_pages_in_start_order_each_once(api, huge):
    got = pages(api, "operations", 5000)

    assert [len(p) for p in got] == [5000] * 6
    ids = [op["id"] for page in got for op in page]
    assert len(set(ids)) == OPERATIONS
    starts = [op["started_at"] for page in got for op in page]
    assert starts == sorted(starts)


def test_api_calls_page_and_the_default_page_is_bounded(api, huge):
    got = pages(api, "api_calls", 1000)
    assert [len(p) for p in got] == [1000, 1000, 500]
    assert len({c["id"] for page in got for c in page}) == CALLS

    body = api.get("/sessions/huge", include="operations,api_calls").json()
    assert len(body["operations"]) == 1000 and len(body["api_calls"]) == 1000
    assert body["operations_next_cursor"] and body["api_calls_next_cursor"]


def test_page_size_and_cursor_are_checked(api, huge):
    assert api.get("/sessions/huge", include="operations", page_size=5001).status_code == 422
    assert api.get("/sessions/huge", include="operations", page_size=0).status_code == 422
    bad = api.get("/sessions/huge", include="operations", operations_cursor="bm9wZQ")
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
