"""Every dashboard page and the API still work for pruned sessions, with the same figures."""

import re

import pytest

from metrics import retention
from metrics.models import Session

pytestmark = pytest.mark.django_db

PAGES = (
    "/?period=all",
    "/episodes/?period=all",
    "/episodes/ep001/?period=all",
    "/episodes/compare/?episodes=ep001,ep002,ep003&period=all",
    "/costs/?period=all",
)
NOISE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"|nonce="[^"]*"')


def page(viewer, path: str) -> str:
    response = viewer.get(path)
    assert response.status_code == 200, path
    return NOISE.sub("", response.content.decode())


@pytest.mark.parametrize("path", PAGES)
def test_rollup_pages_show_the_same_figures_after_pruning(viewer, world, later, path):
    before = page(viewer, path)
    assert retention.prune(now=later).sessions == 9
    assert page(viewer, path) == before


@pytest.mark.parametrize("problem", ["unpriced", "violations", "errors"])
def test_the_sessions_with_a_problem_are_still_listed_after_pruning(viewer, world, later,
                                                                    problem):
    path = f"/sessions/?period=all&problem={problem}"
    before = {s.external_id for s in viewer.get(path).context["sessions"]}
    assert before or problem == "errors"
    if problem == "unpriced":
        assert before == {"ep003_run1", "ep003_run2", "ep003_run3"}  # the house model's runs

    retention.prune(now=later)

    assert {s.external_id for s in viewer.get(path).context["sessions"]} == before


def test_operations_page_keeps_its_per_run_figures_after_pruning(viewer, world, later):
    path = "/operations/?period=all&name=scene_generation"
    before = viewer.get(path).context
    assert before["by_episode"]  # every occurrence, read from the raw rows

    retention.prune(now=later)
    after = viewer.get(path)

    assert after.status_code == 200
    assert after.context["over_time"] == before["over_time"]
    assert after.context["by_release"] == before["by_release"]
    assert after.context["by_episode"] == {}  # occurrences are raw rows: they aged out
    assert "aged out" in after.content.decode()


def test_session_page_says_the_detail_aged_out_and_keeps_its_figures(viewer, world, later):
    path = "/sessions/ep002_run3/"
    before = viewer.get(path).context
    bottlenecks = [(s.name, s.share) for s in before["bottlenecks"]]
    findings = [f.summary for f in before["findings"]]
    by_model = [(m["label"], m["calls"], m["errors"], m["tokens"], m["cost"])
                for m in before["by_model"]]
    assert "detail-pruned" not in viewer.get(path).content.decode()

    retention.prune(now=later)
    response = viewer.get(path)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="detail-pruned"' in html and "aged out" in html
    after = response.context
    assert [(s.name, s.share) for s in after["bottlenecks"]] == bottlenecks
    assert [f.summary for f in after["findings"]] == findings
    assert [(m["label"], m["calls"], m["errors"], m["tokens"], m["cost"])
            for m in after["by_model"]] == by_model
    # latencies went with the calls: unknown, not 0
    assert all(m["avg_latency_s"] is None for m in after["by_model"])
    assert viewer.get(path + "summary.txt").status_code == 200
    assert viewer.get(path + "?export=csv").status_code == 200


def test_api_reports_a_pruned_session_with_its_figures(api, world, later):
    before = api.get("/sessions/ep002_run3").json()
    retention.prune(now=later)

    after = api.get("/sessions/ep002_run3", include="operations,api_calls").json()

    for key in ("api", "duration_s", "bottlenecks", "findings", "regressions", "budgets"):
        assert after[key] == before[key], key
    assert after["operations"] == [] and after["api_calls"] == []
    assert after["detail_pruned_at"] is not None
    assert Session.objects.get(external_id="ep002_run3").detail_pruned_at is not None
