"""Judgements that read sibling sessions do not depend on the order sessions arrive in.

The same runs are stored through the API in several orders, each order in its own project
with the same budgets; every project ends with the same budget results and regressions.
A session re-sent with another start (moved) gives what storing it there first gives.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.models import ApiKey
from metrics import tasks
from metrics.models import DEFAULT_PROJECT_SLUG, Budget, BudgetCheck, Project, Regression, Session
from tests.conftest import ApiClient
from tests.dashboard.world import run_payload

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def runs(*, moved: bool = False) -> list[dict]:
    """Two episodes run a few times; a cold first take, warm re-runs, one slow run."""
    specs = [  # id, episode, hours after T0, scene seconds, cache hits of 30 lookups
        ("ep001_run1", "ep001", 0, 4.0, 5),
        ("ep001_run2", "ep001", 2, 4.2, 25),
        ("ep001_run3", "ep001", 4, 4.1, 12),  # a re-run with a cold cache: fails its budget
        ("ep002_run1", "ep002", 1, 4.0, 4),
        ("ep002_run2", "ep002", 3, 9.0, 26),  # slow scenes: a regression
        ("ep003_run1", "ep003", 5, 4.3, 6),
    ]
    if moved:  # ep001_run1 started after the others of its episode
        specs[0] = ("ep001_run1", "ep001", 6, 4.0, 5)
    payloads = []
    for sid, episode, hours, scene_s, hits in specs:
        payload = run_payload(sid, episode=episode, started_at=T0 + timedelta(hours=hours),
                              scene_s=scene_s)
        payload["session"]["cache"] = {"hits": hits, "misses": 30 - hits, "by_name": {}}
        payloads.append(payload)
    return payloads


def project_named(slug: str) -> ApiClient:
    project = Project.objects.create(slug=slug, name=slug)
    for budget in Budget.objects.filter(project__slug=DEFAULT_PROJECT_SLUG):
        Budget.objects.create(project=project, name=budget.name, workflow=budget.workflow,
                              metric=budget.metric, threshold=budget.threshold,
                              reruns_only=budget.reruns_only)
    return ApiClient(ApiKey.generate(project=project, name="generator")[1])


def store(api: ApiClient, slug: str, payload: dict) -> None:
    response = api.post("/sessions", payload)
    assert response.status_code in (200, 201), response.content
    session = Session.objects.get(project__slug=slug, external_id=payload["session"]["id"])
    tasks.analyze_session(session.pk)  # what ingest enqueues after its commit


def judged(slug: str) -> dict[str, list]:
    return {
        "budgets": sorted(BudgetCheck.objects.filter(session__project__slug=slug)
                          .values_list("session__external_id", "budget__name", "passed")),
        "regressions": sorted(
            (sid, metric, name, round(ratio, 6), tuple(sorted(compared)))
            for sid, metric, name, ratio, compared in
            Regression.objects.filter(session__project__slug=slug).values_list(
                "session__external_id", "metric", "name", "ratio", "baseline_sessions")),
    }


def stored_in_order(slug: str, payloads: list[dict]) -> dict[str, list]:
    api = project_named(slug)
    for payload in payloads:
        store(api, slug, payload)
    return judged(slug)


def test_the_same_sessions_in_any_order_get_the_same_budgets_and_regressions():
    payloads = runs()
    shuffled = payloads[:]
    random.Random(15).shuffle(shuffled)

    in_start_order = stored_in_order("in-order", payloads)
    reversed_order = stored_in_order("reversed", payloads[::-1])
    shuffled_order = stored_in_order("shuffled", shuffled)

    assert reversed_order == in_start_order
    assert shuffled_order == in_start_order
    # The data holds what the judgements are about: a failed re-run budget, a regression.
    failed = {(sid, name) for sid, name, passed in in_start_order["budgets"] if not passed}
    assert ("ep001_run3", "Cache hit rate over 60% on a re-run") in failed
    assert ("ep001_run1", "Cache hit rate over 60% on a re-run") not in failed  # first take
    assert any(r[0] == "ep002_run2" for r in in_start_order["regressions"])


def test_a_moved_session_is_judged_as_if_it_had_arrived_there():
    stored_in_order("moved", runs())
    api = ApiClient(ApiKey.generate(project=Project.objects.get(slug="moved"), name="again")[1])
    store(api, "moved", runs(moved=True)[0])  # ep001_run1 re-sent with a later start

    assert judged("moved") == stored_in_order("there-first", runs(moved=True))
    # ep001_run2 is now the episode's first take: its re-run budget no longer applies.
    assert ("ep001_run2", "Cache hit rate over 60% on a re-run") not in {
        (sid, name) for sid, name, _ in judged("moved")["budgets"]}
