"""A session row is written only where its figures changed.

Every write of a session row adds an entry to each of its indexes (they cover the figures,
so it is seldom a HOT update), and the split index pages stay half empty after VACUUM: the
overview's period index reads those pages. An analysis or a resend that changes nothing
must leave the row's figures alone; one that changes some must write exactly those.
"""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics.analysis.analyze import analyze_session
from metrics.models import Session
from tests.factories import api_call, operation, session_payload

pytestmark = pytest.mark.django_db

PAYLOAD = session_payload(
    "s1", operations=[operation("o1", "dialogue", start_s=0, duration_s=2.0)],
    api_calls=[api_call("c1", operation_id="o1", prompt_tokens=100, completion_tokens=20,
                        cost_usd=0.25)])


def session_columns_written(queries: list[dict]) -> set[str]:
    """The columns of metrics_session that the captured UPDATE statements set."""
    written = set()
    for query in queries:
        sql = query["sql"]
        if re.match(r'UPDATE "?metrics_session"? SET', sql):
            set_clause = re.split(r" WHERE ", sql.split(" SET ", 1)[1], maxsplit=1)[0]
            written |= set(re.findall(r'"(\w+)" = ', set_clause))
    return written


def test_analysing_an_unchanged_session_again_writes_only_when_it_was_analysed(api):
    assert api.post("/sessions", PAYLOAD).status_code in (200, 201)
    session = Session.objects.get()
    analyze_session(session)

    with CaptureQueriesContext(connection) as queries:
        analyze_session(session)

    assert session_columns_written(queries.captured_queries) == {"analyzed_at"}
    session.refresh_from_db()
    # by hand: one call of 100 + 20 tokens at $0.25, one operation
    assert (session.api_calls_count, session.total_tokens, session.cost_usd,
            session.operations_count) == (1, 120, Decimal("0.25"), 1)


def test_a_resend_of_the_same_payload_leaves_the_figures_unwritten(api):
    assert api.post("/sessions", PAYLOAD).status_code in (200, 201)

    with CaptureQueriesContext(connection) as queries:
        assert api.post("/sessions", PAYLOAD).status_code in (200, 201)

    written = session_columns_written(queries.captured_queries)
    assert not written & {"api_calls_count", "prompt_tokens", "total_tokens", "cost_usd",
                          "operations_count", "rollup_episode", "unpriced_calls_count"}


def test_a_resend_that_changes_one_call_writes_just_the_figures_it_moves(api):
    assert api.post("/sessions", PAYLOAD).status_code in (200, 201)
    changed = session_payload(
        "s1", operations=PAYLOAD["operations"],
        api_calls=[api_call("c1", operation_id="o1", prompt_tokens=300, completion_tokens=20,
                            cost_usd=0.25)])

    with CaptureQueriesContext(connection) as queries:
        assert api.post("/sessions", changed).status_code in (200, 201)

    written = session_columns_written(queries.captured_queries)
    assert {"prompt_tokens", "total_tokens"} <= written
    assert not written & {"api_calls_count", "operations_count", "completion_tokens"}
    session = Session.objects.get()
    # by hand: the call now has 300 + 20 tokens; still one call and one operation
    assert (session.prompt_tokens, session.total_tokens, session.api_calls_count) == (
        300, 320, 1)
