"""Regressions against marked baselines, or the median of the workflow's previous runs."""

from datetime import timedelta

import pytest
from django.test import override_settings

from metrics.analysis.analyze import analyze_session
from metrics.models import Regression, Session
from tests.factories import T0, api_call, operation, session_payload

pytestmark = pytest.mark.django_db


def run(api, session_id, *, hour, dialogue_s, tiny_s=0.01, cost=0.10, baseline=False,
        episode="ep001"):
    ops = [
        operation("root", "generate_full_script", start_s=0, duration_s=dialogue_s + 20),
        operation("d", "dialogue", start_s=1, duration_s=dialogue_s, parent_id="root"),
        operation("t", "tiny_step", start_s=dialogue_s + 2, duration_s=tiny_s,
                  parent_id="root"),
    ]
    payload = session_payload(session_id, episode=episode, operations=ops,
                              api_calls=[api_call("c", cost_usd=cost)],
                              started_at=T0 + timedelta(hours=hour),
                              duration_s=dialogue_s + 20)
    api.post("/sessions", payload)
    session = Session.objects.get(external_id=session_id)
    if baseline:
        Session.objects.filter(pk=session.pk).update(is_baseline=True)
    analyze_session(session)
    return session


def regressions(session) -> dict[tuple[str, str], float]:
    return {(r.metric, r.name): round(r.ratio, 2)
            for r in Regression.objects.filter(session=session)}


def test_slower_than_the_median_of_previous_runs_is_a_regression(api):
    for hour, dialogue in enumerate([10, 12, 11]):
        run(api, f"prev{hour}", hour=hour, dialogue_s=dialogue, episode=f"ep00{hour}")

    slow = run(api, "slow", hour=5, dialogue_s=22, cost=0.30, episode="ep009")

    assert regressions(slow) == {("self_time_s", "dialogue"): 2.0, ("cost_usd", ""): 3.0}
    regression = Regression.objects.get(session=slow, metric="self_time_s")
    assert regression.baseline_kind == "previous"
    assert sorted(regression.baseline_sessions) == ["prev0", "prev1", "prev2"]


def test_tiny_operations_below_the_floor_are_not_flagged(api):
    run(api, "prev", hour=0, dialogue_s=10, tiny_s=0.01)

    doubled_tiny = run(api, "now", hour=1, dialogue_s=10, tiny_s=0.05)

    assert regressions(doubled_tiny) == {}


def test_a_marked_baseline_wins_over_previous_runs(api):
    run(api, "base", hour=0, dialogue_s=5, baseline=True)
    run(api, "prev", hour=1, dialogue_s=20)

    now = run(api, "now", hour=2, dialogue_s=20)

    assert regressions(now) == {("self_time_s", "dialogue"): 4.0}
    assert Regression.objects.get(session=now).baseline_sessions == ["base"]


def test_the_first_run_of_a_workflow_has_nothing_to_regress_from(api):
    assert regressions(run(api, "first", hour=0, dialogue_s=100)) == {}


@override_settings(REGRESSION_RATIO=3.0)
def test_the_ratio_is_a_setting(api):
    run(api, "prev", hour=0, dialogue_s=10)
    assert regressions(run(api, "now", hour=1, dialogue_s=25)) == {}


def test_regressions_are_in_the_api_detail(api):
    run(api, "prev", hour=0, dialogue_s=10)
    run(api, "now", hour=1, dialogue_s=30)

    shown = api.get("/sessions/now").json()["regressions"]

    assert [(r["metric"], r["name"], r["ratio"]) for r in shown] == [
        ("self_time_s", "dialogue", 3.0)]
