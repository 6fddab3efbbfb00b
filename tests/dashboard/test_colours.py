"""A model, a provider and an episode keep their colour on every page and every filter."""

import json
from datetime import date
from itertools import combinations

import pytest

from metrics.dashboard import charts, colours, figures
from tests.dashboard.world import build_world


def _trace_colours(embedded: str) -> dict[str, str]:
    return {trace["name"]: trace["marker"]["color"] for trace in json.loads(embedded)["data"]}


def test_adding_a_model_does_not_recolour_the_others():
    trends = [{"code": "ep001", "episode_id": 1, "runs": 1, "avg_duration_s": 1.0,
               "cache_hit_rate": 0.5, "tokens_per_run": 10}]
    alone = figures.overview_figures(trends, {(1, "openai/gpt-4o"): 1.0})
    crowded = figures.overview_figures(
        trends, {(1, "openai/gpt-4o"): 1.0, (1, "anthropic/claude-sonnet-4"): 2.0,
                 (1, "openai/gpt-4o-mini"): 0.5, (1, "google/gemini-2.5-pro"): 0.1})

    assert (_trace_colours(alone["cost"])["openai/gpt-4o"]
            == _trace_colours(crowded["cost"])["openai/gpt-4o"]
            == colours.colour_for("model", "openai/gpt-4o"))


def test_models_episodes_and_statuses_never_share_a_colour():
    kinds = {kind: set(palette) for kind, palette in colours.PALETTES.items()}
    status_colours = {charts.OK_COLOUR, charts.FAILED_COLOUR, charts.RUNNING_COLOUR}

    for (kind_a, a), (kind_b, b) in combinations(kinds.items(), 2):
        assert a.isdisjoint(b), (kind_a, kind_b)
    assert all(palette.isdisjoint(status_colours) for palette in kinds.values())


def test_two_names_on_one_colour_are_told_apart_by_a_pattern():
    palette_size = len(colours.PALETTES["episode"])
    codes = [f"ep{n:03}" for n in range(palette_size + 1)]  # at least one shared colour

    styles = colours.styles_for("episode", codes)
    looks = {(s["colour"], s["pattern"]) for s in styles.values()}

    assert len(looks) == len(codes)
    assert all(s["colour"] == colours.colour_for("episode", c) for c, s in styles.items())


def test_the_cost_by_day_chart_colours_by_the_chosen_grouping():
    day = date(2026, 11, 1)
    cell = {(day, "openai/gpt-4o"): 1, (day, "openai/gpt-4o-mini"): 2}

    by_model = _trace_colours(figures.cost_figures(cell, {}, "model")["time"])

    assert by_model == {name: colours.colour_for("model", name) for name in by_model}


@pytest.mark.django_db
def test_an_episode_and_a_model_look_the_same_on_every_page(viewer, api):
    build_world(api)

    overview = viewer.get("/").context["charts"]
    compare = viewer.get("/episodes/compare/?episodes=ep001,ep002,ep003").context["charts"]
    only_two = viewer.get("/episodes/compare/?episodes=ep003,ep002").context["charts"]
    costs = viewer.get("/costs/").context["charts"]

    model = "openai/gpt-4o"
    assert (_trace_colours(overview["cost"])[model] == _trace_colours(compare["cost"])[model]
            == _trace_colours(costs["time"])[model] == colours.colour_for("model", model))
    assert (_trace_colours(compare["self_time"])["ep003"]
            == _trace_colours(only_two["self_time"])["ep003"]
            == _trace_colours(only_two["cache"])["ep003"]
            == colours.colour_for("episode", "ep003"))
