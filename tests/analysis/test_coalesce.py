"""A session flushed in many parts is analyzed once its parts have settled, not per part."""

from decimal import Decimal

import pytest

from metrics.analysis import analyze
from metrics.models import ApiCall, CostLine, OperationStat, Session
from metrics.tasks import analyze_session
from tests.factories import big_payload

pytestmark = pytest.mark.django_db

PARTS = 8
OPERATIONS = 4000
CALLS = 400


def parts_of(payload: dict, count: int) -> list[dict]:
    """The payload as ``count`` flushes: operations and calls split in order, the session
    running until the last part, sequence numbers rising."""
    ops, calls = payload["operations"], payload["api_calls"]
    parts = []
    for n in range(count):
        last = n == count - 1
        session = {**payload["session"], "sequence": n + 1}
        if not last:
            session.update(status="running", ended_at=None)
        parts.append({
            **payload, "session": session,
            "operations": ops[n * len(ops) // count:(n + 1) * len(ops) // count],
            "api_calls": calls[n * len(calls) // count:(n + 1) * len(calls) // count],
        })
    return parts


@pytest.fixture
def full_analyses(monkeypatch) -> list[int]:
    """Counts the analyses that read the raw rows (the expensive part), running them."""
    ran: list[int] = []
    real = analyze._derive_from_rows

    def counted(session):
        ran.append(session.pk)
        return real(session)

    monkeypatch.setattr(analyze, "_derive_from_rows", counted)
    return ran


def test_eight_parts_enqueue_eight_tasks_but_run_one_analysis(
    api, full_analyses, django_capture_on_commit_callbacks
):
    payload = big_payload("long_run", operations=OPERATIONS, api_calls=CALLS)
    # The broker holds each task for the settle window: by the time the first runs, all
    # eight parts are in. Capturing the after-commit publishes and running them afterwards
    # is that order.
    with django_capture_on_commit_callbacks(execute=False) as published:
        for part in parts_of(payload, PARTS):
            assert api.post("/sessions", part).status_code in (200, 201)
    assert len(published) == PARTS
    for publish in published:
        publish()

    assert len(full_analyses) == 1
    session = Session.objects.get()
    assert session.analyzed_at >= session.merged_at
    assert session.status == "completed"
    assert session.operations_count == OPERATIONS and session.api_calls_count == CALLS
    lines = dict(OperationStat.objects.values_list("name", "occurrences"))
    assert lines == {"generate_full_script": 1, "dialogue_line": OPERATIONS - 1}
    # gpt-4o-mini at the seeded price, $0.15 in and $0.60 out per million tokens:
    # 700 x 0.15 + 130 x 0.60 = 183 millionths of a dollar a call
    priced = ApiCall.objects.filter(cost_source=ApiCall.CostSource.PRICE_TABLE).count()
    assert priced == CALLS
    assert session.cost_usd == CALLS * Decimal("0.000183")
    assert sum(CostLine.objects.values_list("calls", flat=True)) == CALLS
    assert sum(CostLine.objects.values_list("cost_usd", flat=True)) == session.cost_usd


def test_a_task_for_an_overtaken_or_analyzed_merge_skips(api, full_analyses):
    api.post("/sessions", big_payload("s1", operations=10, api_calls=2))
    session = Session.objects.get()
    first_merge = session.merged_at.isoformat()

    assert analyze_session(session.pk, first_merge) is True
    assert analyze_session(session.pk, first_merge) is False  # a duplicate: done already

    api.post("/sessions", big_payload("s1", operations=12, api_calls=2))
    assert analyze_session(session.pk, first_merge) is False  # overtaken by the new part
    assert len(full_analyses) == 1
    assert analyze_session(session.pk) is True  # the sweep and admin actions always run
    assert OperationStat.objects.get(name="dialogue_line").occurrences == 11
