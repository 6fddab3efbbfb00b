"""Budgets: each analyzed, finished session is checked against its project's budgets."""

import pytest

from metrics.analysis.analyze import analyze_session
from metrics.models import Budget, BudgetCheck, Project, Session
from tests.factories import T0, api_call, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def budgets(project):
    Budget.objects.filter(project=project).delete()  # the shipped defaults
    return {
        "duration": Budget.objects.create(project=project, name="Under 5 minutes",
                                          metric="duration_s", threshold=300),
        "cache": Budget.objects.create(project=project, name="Warm cache on re-run",
                                       metric="cache_hit_rate", threshold=0.6,
                                       reruns_only=True),
        "cost": Budget.objects.create(project=project, name="Under a dollar",
                                      metric="cost_usd", threshold=1.0,
                                      workflow="script_generation"),
        "errors": Budget.objects.create(project=project, name="Few errors",
                                        metric="api_error_rate", threshold=0.05),
        "tokens": Budget.objects.create(project=project, name="Lean scenes",
                                        metric="tokens_per_scene", threshold=500),
        "other_workflow": Budget.objects.create(project=project, name="Comedy pass only",
                                                metric="duration_s", threshold=1,
                                                workflow="comedy_pass"),
    }


def analyze(api, payload) -> dict[str, bool]:
    api.post("/sessions", payload)
    session = Session.objects.get(external_id=payload["session"]["id"])
    analyze_session(session)
    return dict(BudgetCheck.objects.filter(session=session).values_list("budget__name",
                                                                        "passed"))


def test_each_applicable_budget_gets_a_pass_or_fail(api, budgets):
    calls = [api_call("c1", cost_usd=2.5, error=True), api_call("c2", cost_usd=0.1)]
    results = analyze(api, session_payload("s1", duration_s=420, api_calls=calls,
                                           counters={"scenes_generated": 2}))

    assert results == {
        "Under 5 minutes": False,       # 420 s
        "Under a dollar": False,        # $2.60
        "Few errors": False,            # 1 of 2 calls failed
        "Lean scenes": False,           # 1660 tokens over 2 scenes
    }


def test_per_scene_and_peak_memory_budgets_in_their_units(api, project):
    Budget.objects.filter(project=project).delete()
    for name, metric, threshold in [("Scene cost", "cost_per_scene_usd", 0.5),
                                    ("Scene time", "seconds_per_scene", 30),
                                    ("Under 1 GB", "peak_memory_mb", 1000)]:
        Budget.objects.create(project=project, name=name, metric=metric, threshold=threshold)
    payload = session_payload("s1", duration_s=100, counters={"scenes_generated": 4},
                              api_calls=[api_call("c1", cost_usd=2.4)])
    payload["session"]["peak_memory_bytes"] = 1_250_000_000

    results = analyze(api, payload)
    values = dict(BudgetCheck.objects.values_list("budget__name", "value"))

    assert results == {"Scene cost": False, "Scene time": True, "Under 1 GB": False}
    assert values == {"Scene cost": pytest.approx(0.6),  # $2.40 over 4 scenes
                      "Scene time": pytest.approx(25.0),  # 100 s over 4 scenes
                      "Under 1 GB": pytest.approx(1250.0)}  # 1,250,000,000 bytes in MB


def test_a_session_without_peak_memory_or_scenes_is_not_judged_on_them(api, project):
    Budget.objects.filter(project=project).delete()
    Budget.objects.create(project=project, name="Under 1 GB", metric="peak_memory_mb",
                          threshold=1000)
    Budget.objects.create(project=project, name="Scene time", metric="seconds_per_scene",
                          threshold=30)

    assert analyze(api, session_payload("s1", duration_s=100, counters={})) == {}


def test_cache_budget_applies_only_to_a_rerun_of_the_episode(api, budgets):
    first = analyze(api, session_payload("first", cache=(1, 9), duration_s=60))
    rerun = analyze(api, session_payload("rerun", cache=(9, 1), duration_s=60,
                                         started_at=T0.replace(hour=12)))

    assert "Warm cache on re-run" not in first
    assert rerun["Warm cache on re-run"] is True
    assert rerun["Under 5 minutes"] is True


def test_running_sessions_are_not_judged_yet(api, budgets):
    results = analyze(api, session_payload("s1", status="running", duration_s=None))
    assert results == {}


def test_violations_are_queryable_and_in_the_api_detail(api, budgets):
    analyze(api, session_payload("slow", duration_s=900))
    analyze(api, session_payload("quick", duration_s=30, started_at=T0.replace(hour=12)))

    violations = BudgetCheck.objects.filter(passed=False, budget=budgets["duration"])
    assert list(violations.values_list("session__external_id", flat=True)) == ["slow"]
    detail = api.get("/sessions/slow").json()
    assert detail["budget_violations"] >= 1
    assert {"budget": "Under 5 minutes", "metric": "duration_s", "threshold": 300.0,
            "value": 900.0, "passed": False} in detail["budgets"]


def test_the_default_project_ships_with_the_original_designs_targets(db):
    shipped = Budget.objects.filter(project=Project.objects.get(slug="default"))
    assert shipped.filter(metric="duration_s", threshold=300).exists()
    assert shipped.filter(metric="cache_hit_rate", threshold=0.6, reruns_only=True).exists()
