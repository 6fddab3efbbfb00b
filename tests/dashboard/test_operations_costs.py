"""The operations page (distributions, percentiles) and the cost page (rollups, what-if)."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metrics.models import ApiCall, Operation
from tests.dashboard.world import run_payload, send

pytestmark = pytest.mark.django_db


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_operation_names_are_offered_by_time_spent(viewer, world):
    response = viewer.get("/operations/")

    assert response.context["names"][0] in {"scene_generation", "dialogue_writing"}
    assert set(response.context["names"]) == {
        "generate_full_script", "scene_generation", "dialogue_writing"}
    assert response.context["name"] == response.context["names"][0]


def test_box_plots_per_episode_use_every_occurrence(viewer, world):
    response = viewer.get("/operations/?name=scene_generation")
    by_episode = response.context["by_episode"]

    assert list(by_episode) == ["ep001", "ep002", "ep003"]
    durations = list(Operation.objects.filter(
        name="scene_generation", session__episode__code="ep002").values_list(
        "duration_s", flat=True))
    assert by_episode["ep002"]["n"] == 9
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert by_episode["ep002"][q] == nearest_rank(durations, q)
    assert "fig-episodes" in response.content.decode()


def test_percentiles_over_time_and_by_release(viewer, world):
    response = viewer.get("/operations/?name=scene_generation")

    days = response.context["over_time"]
    assert sum(day["runs"] for day in days) == 9
    assert all(day["p50_s"] <= day["p95_s"] for day in days)
    releases = {r["release"]: r for r in response.context["by_release"]}
    assert set(releases) == {"generator 1.4.0", "generator 1.5.0", "generator 1.6.0"}
    # each run's scene_generation takes scene_s; ep003 runs at 8.0, 8.5 and 9.0 s
    assert releases["generator 1.6.0"]["p50_s"] == pytest.approx(8.5)
    assert releases["generator 1.6.0"]["p95_s"] == pytest.approx(9.0)


def test_an_unknown_operation_shows_empty_states(viewer, world):
    content = viewer.get("/operations/?name=nothing").content.decode()

    assert "No finished occurrence of this operation" in content


def test_the_cost_page_sums_the_rollups_by_model(viewer, world):
    response = viewer.get("/costs/")

    models = {m["label"]: m for m in response.context["models"]}
    assert models["openai/gpt-4o"]["cost_usd"] == sum(ApiCall.objects.filter(
        model="gpt-4o").values_list("cost_usd", flat=True))
    assert [m["label"] for m in response.context["unpriced"]] == ["openai/house-model"]
    assert models["openai/house-model"]["unpriced_calls"] == 9
    assert response.context["total_cost"] == sum(
        ApiCall.objects.exclude(cost_usd=None).values_list("cost_usd", flat=True))
    assert "fig-time" in response.content.decode()


def test_cost_over_time_groups_by_workflow_or_provider_and_honours_session_filters(viewer,
                                                                                  world):
    by_workflow = viewer.get("/costs/?by=workflow").content.decode()
    assert "script_generation" in by_workflow

    tagged = viewer.get("/costs/?tag=pilot&by=provider")
    assert tagged.context["filters"].session_only
    assert tagged.context["total_cost"] == viewer.get("/costs/").context["total_cost"]
    assert viewer.get("/costs/?tag=none").context["models"] == []


def test_a_release_filter_reads_the_daily_rollup_and_sums_that_releases_calls(viewer, world):
    response = viewer.get("/costs/?release=generator+1.5.0")

    assert not response.context["from_cost_lines"]
    calls = ApiCall.objects.filter(session__release="generator 1.5.0")
    assert response.context["total_cost"] == sum(
        calls.exclude(cost_usd=None).values_list("cost_usd", flat=True))
    models = {m["label"]: m["calls"] for m in response.context["models"]}
    assert sum(models.values()) == calls.count() == 18  # ep002: 3 runs x 3 scenes x 2 calls
    assert "From the daily cost rollup" in response.content.decode()

    tagged = viewer.get("/costs/?release=generator+1.5.0&tag=pilot")
    assert tagged.context["from_cost_lines"]
    assert tagged.context["total_cost"] == response.context["total_cost"]
    assert "no column for environment or tag" in tagged.content.decode()


def test_what_if_prices_episodes_as_another_model(viewer, world):
    response = viewer.get("/costs/?whatif_episodes=ep001,ep002&whatif_model=openai/gpt-4o-mini")

    rows = {r.episode: r for r in response.context["what_if"]["rows"]}
    assert set(rows) == {"ep001", "ep002"}
    # 18 calls of 800 prompt and 150 completion tokens at 0.15 and 0.60 USD per million
    expected = Decimal(18) * (800 * Decimal("0.15") + 150 * Decimal("0.60")) / 1_000_000
    assert rows["ep001"].what_if_cost_usd == expected.quantize(Decimal("0.00000001"))
    assert rows["ep001"].actual_cost_usd > rows["ep001"].what_if_cost_usd
    assert "fig-what_if" in response.content.decode()


def test_what_if_with_an_unpriced_model_says_so(viewer, world):
    response = viewer.get("/costs/?whatif_episodes=ep001&whatif_model=openai/house-model")

    assert "There is no price for openai/house-model" in response.content.decode()


def test_what_if_defaults_to_the_latest_episodes(viewer, world):
    assert viewer.get("/costs/").context["what_if"]["episodes"] == "ep001,ep002,ep003"


def test_the_pages_run_a_bounded_number_of_queries(viewer, api, world,
                                                   django_assert_max_num_queries):
    pages = ["/operations/?name=scene_generation",
             "/costs/?whatif_model=openai/gpt-4o-mini", "/costs/?tag=pilot"]
    counts = {}
    for page in pages:
        with django_assert_max_num_queries(25) as captured:
            viewer.get(page)
        counts[page] = len(captured.captured_queries)
    now = datetime.now(UTC)
    for i in range(20):
        send(api, run_payload(f"more{i}", episode=f"ep{300 + i}", release=f"r{i}",
                              started_at=now - timedelta(days=i % 9, hours=i)))
    for page in pages:
        with django_assert_max_num_queries(counts[page]):
            viewer.get(page)


def test_a_busy_period_takes_percentiles_from_every_kth_run(viewer, world, monkeypatch):
    from metrics.dashboard import operation_trends

    monkeypatch.setattr(operation_trends, "RUNS_SAMPLED", 4)  # the world has 9 runs: every 3rd

    response = viewer.get("/operations/?name=scene_generation")

    assert response.context["sample_step"] == 3
    assert sum(day["runs"] for day in response.context["over_time"]) == 3
    assert sum(day["occurrences"] for day in response.context["over_time"]) == 27  # all
    assert "every 3th run" in response.content.decode() or "every 3" in \
        response.content.decode()


def test_the_sample_step_counts_the_runs_of_the_operation(viewer, api, world, monkeypatch):
    from metrics.dashboard import operation_trends
    from metrics.models import Session

    monkeypatch.setattr(operation_trends, "RUNS_SAMPLED", 4)
    now = datetime.now(UTC)
    for i in range(6):  # runs without the operation: 15 runs in all, 9 of scene_generation
        send(api, run_payload(f"outline{i}", episode="ep009", names={"scene": "outline"},
                              started_at=now - timedelta(hours=i + 1)))

    # The daily rollup counts the runs of the operation: 9 of them, every 3rd sampled.
    assert viewer.get("/operations/?name=scene_generation").context["sample_step"] == 3
    # An environment filter, which the rollup cannot apply, counts the same runs among the
    # period's: 15 runs are in production, 9 of them of scene_generation.
    production = Session.objects.filter(environment="production",
                                        started_at__gte=now - timedelta(days=30)).count()
    assert production == 15
    response = viewer.get("/operations/?name=scene_generation&environment=production")
    assert response.context["sample_step"] == 3
    assert "more than 4 runs of this operation" in response.content.decode()
