"""A merge moves the session's totals by what it changed, without recounting the session.

Each case posts payloads one after the other. After every post the stored totals must equal
a recount of the session's rows (``refresh_session_totals``), and after the last one the
hand-calculated figures. No analysis runs here (it would recount and hide a wrong move).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from metrics.analysis.totals import TOTAL_FIELDS, refresh_session_totals
from metrics.models import ApiCall, Session
from tests.factories import api_call, operation, session_payload

pytestmark = pytest.mark.django_db


def ops(*ids: str) -> list[dict]:
    return [operation(op_id, "dialogue", start_s=n, duration_s=1.0)
            for n, op_id in enumerate(ids)]


def tokens(call_id: str, prompt: int, completion: int, **extra: Any) -> dict:
    return api_call(call_id, prompt_tokens=prompt, completion_tokens=completion,
                    **extra) | {"total_tokens": prompt + completion}


@dataclass
class Case:
    name: str
    posts: list[dict]
    expected: dict[str, Any]  # by hand, after the last post


CASES = [
    Case("a resent call replaces its figures; a new one adds its own",
         [session_payload("s", status="running", duration_s=None, operations=ops("a", "b"),
                          api_calls=[tokens("c1", 100, 20), tokens("c2", 300, 40, error=True)]),
          session_payload("s", operations=ops("b", "c"),
                          api_calls=[tokens("c2", 500, 60), tokens("c3", 50, 5, cost_usd=0.1)])],
         # c1 100/20, c2 now 500/60 and no error, c3 50/5 at $0.10; operations a, b, c
         {"api_calls_count": 3, "api_errors_count": 0, "prompt_tokens": 650,
          "completion_tokens": 85, "total_tokens": 735, "cost_usd": Decimal("0.1"),
          "operations_count": 3}),
    Case("the same payload twice counts once",
         [session_payload("s", operations=ops("a"),
                          api_calls=[tokens("c1", 10, 2, cost_usd=0.25)])] * 2,
         {"api_calls_count": 1, "api_errors_count": 0, "prompt_tokens": 10,
          "completion_tokens": 2, "total_tokens": 12, "cost_usd": Decimal("0.25"),
          "operations_count": 1}),
    Case("a late part with a lower sequence still adds its rows",
         [session_payload("s", sequence=2, operations=ops("a"), api_calls=[tokens("c1", 7, 1)]),
          session_payload("s", sequence=1, status="running", duration_s=None,
                          operations=ops("a", "z"),
                          api_calls=[tokens("c0", 3, 1, error=True)])],
         {"api_calls_count": 2, "api_errors_count": 1, "prompt_tokens": 10,
          "completion_tokens": 2, "total_tokens": 12, "cost_usd": Decimal("0"),
          "operations_count": 2}),
    Case("cache tokens are summed for the caps",
         [session_payload("s", api_calls=[tokens("c1", 100, 1, cached_tokens=60,
                                                 cache_write_tokens=30)]),
          session_payload("s", api_calls=[tokens("c1", 100, 1, cached_tokens=40,
                                                 cache_write_tokens=30),
                                          tokens("c2", 100, 1, cached_tokens=5)])],
         {"api_calls_count": 2, "prompt_tokens": 200, "cached_tokens": 45,
          "cache_write_tokens": 30, "operations_count": 0}),
]


def stored_totals(session_id: str) -> dict[str, Any]:
    session = Session.objects.get(external_id=session_id)
    return {name: getattr(session, name) for name in TOTAL_FIELDS}


def recounted_totals(session_id: str) -> dict[str, Any]:
    refresh_session_totals(Session.objects.get(external_id=session_id))
    return stored_totals(session_id)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_merge_moves_the_totals_to_what_a_recount_gives(api, case):
    for payload in case.posts:
        assert api.post("/sessions", payload).status_code in (200, 201)
        moved = stored_totals("s")
        assert moved == recounted_totals("s")

    assert {name: moved[name] for name in case.expected} == case.expected


def test_a_server_priced_cost_kept_by_a_resend_stays_in_the_total(api):
    api.post("/sessions", session_payload("s", api_calls=[tokens("c1", 10, 1)]))
    # what the analysis does: price the call, then recount
    ApiCall.objects.update(cost_usd=Decimal("0.0123"), cost_source="price_table")
    refresh_session_totals(Session.objects.get())

    api.post("/sessions", session_payload(
        "s", api_calls=[tokens("c1", 10, 1), tokens("c2", 5, 1, cost_usd=0.5)]))

    assert Session.objects.get().cost_usd == Decimal("0.5123")
    assert stored_totals("s") == recounted_totals("s")


def test_a_merge_reads_only_the_merged_calls(api):
    # A recount would need every call of the session: here a stored total that no longer
    # matches the rows (as if the rows had changed behind ingest's back) stays off by the
    # same amount after a merge, which a recount would have put right.
    api.post("/sessions", session_payload("s", operations=ops("a", "b"),
                                          api_calls=[tokens("c1", 10, 1)]))
    Session.objects.update(prompt_tokens=1000, operations_count=50)

    api.post("/sessions", session_payload("s", operations=ops("b", "c"),
                                          api_calls=[tokens("c2", 5, 1)]))

    session = Session.objects.get()
    assert (session.prompt_tokens, session.operations_count) == (1005, 51)


def test_the_cached_token_cap_counts_what_earlier_merges_stored(api):
    near = 2**53 - 10
    first = session_payload("s", api_calls=[tokens("c1", 2**53 - 100, 0, cached_tokens=near)])
    assert api.post("/sessions", first).status_code == 201

    second = session_payload("s", api_calls=[tokens("c2", 50, 0, cached_tokens=20)])
    response = api.post("/sessions", second)

    assert response.status_code == 422
    assert "cached_tokens" in response.content.decode()
    assert ApiCall.objects.count() == 1
