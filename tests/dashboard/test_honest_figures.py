"""Figures that used to mislead a producer, each checked against what really happened."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from metrics.dashboard import charts
from metrics.models import Budget, Regression
from tests.dashboard.world import build_world, run_payload, send

pytestmark = pytest.mark.django_db


def test_the_timeline_hover_says_how_long_an_operation_took_not_when_it_ended():
    bar = charts.WaterfallBar(label="dialogue", depth=1, start_s=10.0, duration_s=2.5,
                              status="ok", detail="")
    fig = json.loads(charts.embed(charts.waterfall([bar], session_elapsed_s=20.0)))
    [trace] = fig["data"]

    # Plotly's %{x} of a bar with a base is where it ends (12.5 s): never shown as "took".
    assert "%{x" not in trace["hovertemplate"]
    took = re.search(r"%\{customdata\[(\d)\]\} %\{customdata\[(\d)\]:[^}]*\} s",
                     trace["hovertemplate"])
    words, seconds = int(took.group(1)), int(took.group(2))
    assert trace["customdata"][0][words] == "took"
    assert trace["customdata"][0][seconds] == 2.5
    assert trace["customdata"][0][1] == 10.0  # "starts at"


def test_a_failed_session_opens_with_the_failed_operation_its_error_and_failed_calls(
        viewer, api):
    send(api, run_payload("broken", episode="ep009", started_at=datetime.now(UTC),
                          status="failed", failed_scene=1))

    content = viewer.get("/sessions/broken/").content.decode()
    banner = content[content.index('class="banner failed"'):content.index("<h2>Timeline")]

    assert "This session failed in <code>scene_generation</code>" in banner
    assert "RateLimitError: slow down" in banner
    assert "1 failed model call" in banner
    assert "rate limited" in banner and "openai/gpt-4o-mini" in banner


def test_a_completed_session_has_no_failure_banner(viewer, api):
    send(api, run_payload("fine", episode="ep009", started_at=datetime.now(UTC)))

    assert 'class="banner failed"' not in viewer.get("/sessions/fine/").content.decode()


def test_unpriced_calls_are_counted_wherever_a_cost_appears(viewer, api):
    build_world(api)  # ep003's runs each make 3 calls to a model with no price

    overview = viewer.get("/").content.decode()
    episode = viewer.get("/episodes/ep003/").content.decode()
    priced_episode = viewer.get("/episodes/ep001/").content.decode()

    assert "incomplete: 9 unpriced calls" in overview  # the total cost card
    assert overview.count("+ 3 unpriced") == 3  # the three ep003 runs in the latest table
    assert episode.count("+ 3 unpriced") == 3
    assert "unpriced" not in priced_episode


def test_budgets_show_their_targets_and_values_in_units(viewer, api):
    build_world(api)
    budget = Budget.objects.get(metric=Budget.Metric.API_ERROR_RATE, name__icontains="5%")

    content = viewer.get("/sessions/ep002_run3/").content.decode()
    budgets = content[content.index("<h2>Budgets"):content.index("<h2>Summary")]

    assert budget.threshold == 0.05
    assert "API error rate" in budgets and "at most 5.0%" in budgets
    # ep002_run3: 1 failed call of 6 = 16.7%, shown as a percentage, not 0.167.
    assert "16.7%" in budgets and "0.167" not in budgets
    assert "api_error_rate" not in content


def test_regressions_show_both_values_with_their_unit(viewer, api):
    build_world(api)
    regression = Regression.objects.filter(session__external_id="ep002_run3").first()

    content = viewer.get("/sessions/ep002_run3/").content.decode()

    assert f"{regression.value:,.2f}s" in content
    assert f"{regression.baseline_value:,.2f}s" in content


def test_counters_are_labelled_in_words(viewer, api):
    send(api, run_payload("words", episode="ep009",
                          started_at=datetime.now(UTC) - timedelta(minutes=1)))

    content = viewer.get("/sessions/words/").content.decode()

    assert ">Scenes generated<" in content and ">Dialogue lines generated<" in content
    assert ">scenes_generated<" not in content


def test_cost_changes_on_the_comparison_carry_the_dollar_sign(viewer, api):
    build_world(api)

    content = viewer.get("/episodes/compare/?episodes=ep001,ep002").content.decode()
    table = content[content.index("<h2>Change per operation"):]

    assert re.search(r"[+-]\$\d+\.\d{4}<", table)
    assert not re.search(r">[+-]\d+\.\d{4}<", table)  # a bare number with no unit
