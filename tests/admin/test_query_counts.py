"""The admin stays fast on big data: query counts do not grow with rows, pages stay small."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics.models import Annotation, Budget, BudgetCheck, Episode, Session
from tests.admin.helpers import admin_url, store
from tests.factories import T0, big_payload, script_payload

pytestmark = pytest.mark.django_db

# Everything a changelist page asks: the login, permissions, the filters' choices, the
# date hierarchy, the counts and the page itself; none of it per row.
CHANGELIST_MAX_QUERIES = 16
CHANGE_PAGE_MAX_QUERIES = 14


def queries_for(client, url: str, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries)


def many_sessions(project, count: int, *, episodes: int = 50) -> None:
    """``count`` session rows in bulk, with annotations and budget checks to count."""
    codes = [Episode(project=project, code=f"ep{n:03d}") for n in range(episodes)]
    codes = Episode.objects.bulk_create(codes)
    now = timezone.now()
    sessions = Session.objects.bulk_create(
        Session(project=project, episode=codes[n % episodes], external_id=f"bulk-{n:05d}",
                workflow=f"wf{n % 3}", environment="production", release="1.0",
                status=Session.Status.COMPLETED, started_at=T0 + timedelta(minutes=n),
                duration_s=30.0, merged_at=now, tags=["pilot"], cache_hits=3, cache_misses=1,
                cache_hit_rate=0.75)
        for n in range(count)
    )
    budget = Budget.objects.filter(project=project).first()
    BudgetCheck.objects.bulk_create(
        BudgetCheck(session=s, budget=budget, value=30.0, passed=n % 2 == 0)
        for n, s in enumerate(sessions[::10])
    )
    Annotation.objects.bulk_create(Annotation(session=s, text="checked")
                                   for s in sessions[::7])


def test_the_session_list_costs_the_same_queries_for_20_or_200_sessions(editor, project):
    for n in range(20):
        store(project, script_payload(f"s{n:03d}", episode=f"ep{n % 4}",
                                      started_at=T0 + timedelta(hours=n)))
    small = queries_for(editor, admin_url("session"))

    for n in range(20, 200):
        store(project, script_payload(f"s{n:03d}", episode=f"ep{n % 4}",
                                      started_at=T0 + timedelta(hours=n)), analyze=n % 5 == 0)
    Annotation.objects.bulk_create(Annotation(session=s, text="note")
                                   for s in Session.objects.all()[::3])

    assert queries_for(editor, admin_url("session")) == small <= CHANGELIST_MAX_QUERIES


def test_the_session_list_of_10000_sessions_is_bounded(editor, project):
    many_sessions(project, 10_000)

    for params in ({}, {"budget": "failed"}, {"q": "pilot"}, {"o": "-10"},
                   {"workflow": "wf1", "started_at__year": "2026"}, {"p": "50"}):
        assert queries_for(editor, admin_url("session"), **params) <= CHANGELIST_MAX_QUERIES, (
            params)
    response = editor.get(admin_url("session"), {"budget": "failed"})
    assert response.context["cl"].result_count == 500
    assert len(response.context["cl"].result_list) == 100


def test_the_episode_list_of_10000_sessions_is_bounded(editor, project):
    many_sessions(project, 10_000, episodes=200)

    assert queries_for(editor, admin_url("episode")) <= CHANGELIST_MAX_QUERIES
    response = editor.get(admin_url("episode"))
    first = response.context["cl"].result_list[0]
    assert (first.code, first.sessions_total, first.duration_sum_s) == ("ep000", 50, 1500.0)
    episode = Episode.objects.get(code="ep000")
    assert queries_for(editor, admin_url("episode", "change", episode.pk)) <= (
        CHANGE_PAGE_MAX_QUERIES)


def test_a_session_of_50000_operations_opens_with_a_few_queries_and_a_small_page(
        editor, project):
    small = store(project, script_payload("small"))
    small_queries = queries_for(editor, admin_url("session", "change", small.pk))
    big = store(project, big_payload("big", operations=50_000, api_calls=5_000),
                analyze=False)

    big_queries = queries_for(editor, admin_url("session", "change", big.pk))
    content = editor.get(admin_url("session", "change", big.pk)).content.decode()

    assert big_queries <= small_queries <= CHANGE_PAGE_MAX_QUERIES
    assert len(content) < 100_000  # 20 operations and 20 calls, never 50,000 rows
    assert content.count("dialogue_line") <= 20
    assert "All 50000 operations" in content and "All 5000 API calls" in content


def test_the_operation_list_of_a_big_session_is_paged(editor, project):
    big = store(project, big_payload("big", operations=5_000, api_calls=10), analyze=False)

    assert queries_for(editor, admin_url("operation"), session=big.pk) <= (
        CHANGELIST_MAX_QUERIES)
    response = editor.get(admin_url("operation"), {"session": big.pk})
    assert len(response.context["cl"].result_list) == 100
    assert response.context["cl"].result_list[0].name == "generate_full_script"
