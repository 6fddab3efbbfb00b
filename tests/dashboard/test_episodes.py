"""Episodes: the sortable table, the comparison with its deltas, one episode's runs."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import Session
from tests.dashboard.world import EPISODES, run_payload, send

pytestmark = pytest.mark.django_db


def codes(response) -> list[str]:
    return [row["code"] for row in response.context["rows"]]


def test_the_table_has_one_row_per_episode_with_its_totals(viewer, world):
    rows = {row["code"]: row for row in viewer.get("/episodes/").context["rows"]}

    assert set(rows) == set(EPISODES)
    ep002 = [s for s in world.values() if s.episode.code == "ep002"]
    assert rows["ep002"]["runs"] == 3
    assert rows["ep002"]["cost_usd"] == sum(s.cost_usd for s in ep002)
    assert rows["ep002"]["avg_duration_s"] == pytest.approx(
        sum(s.duration_s for s in ep002) / 3)
    assert rows["ep002"]["api_error_rate"] == pytest.approx(1 / 18)


def test_the_table_sorts_by_any_column_both_ways(viewer, world):
    assert codes(viewer.get("/episodes/")) == ["ep003", "ep002", "ep001"]  # latest first
    assert codes(viewer.get("/episodes/?sort=code")) == ["ep001", "ep002", "ep003"]
    assert codes(viewer.get("/episodes/?sort=-duration")) == ["ep003", "ep002", "ep001"]
    assert codes(viewer.get("/episodes/?sort=cost_per_run"))[0] == "ep003"  # unpriced model
    assert codes(viewer.get("/episodes/?sort=-failed"))[0] == "ep001"  # a tie: by code
    assert codes(viewer.get("/episodes/?sort=nonsense")) == ["ep003", "ep002", "ep001"]
    links = viewer.get("/episodes/?sort=-cost").context["sort_links"]
    assert links["cost"].endswith("sort=cost") and links["runs"].endswith("sort=-runs")


def test_failed_runs_are_counted_and_sortable(viewer, api, world):
    send(api, run_payload("crash", episode="ep003", started_at=datetime.now(UTC),
                          status="failed"))

    response = viewer.get("/episodes/?sort=-failed")

    assert codes(response)[0] == "ep003" and response.context["rows"][0]["failed_runs"] == 1


def test_the_table_filters_and_searches(viewer, world):
    assert codes(viewer.get("/episodes/?q=002")) == ["ep002"]
    assert codes(viewer.get("/episodes/?release=generator+1.4.0")) == ["ep001"]
    assert codes(viewer.get("/episodes/?period=1d")) == []


def test_the_table_exports_as_csv(viewer, world):
    response = viewer.get("/episodes/?sort=code&export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert rows[0][:3] == ["episode", "title", "runs"]
    assert [row[0] for row in rows[1:]] == ["ep001", "ep002", "ep003"]


def test_the_comparison_lines_up_operations_episode_against_episode(viewer, world):
    response = viewer.get("/episodes/compare/?episodes=ep001,ep003")
    comparison = response.context["comparison"]

    assert comparison.reference == "ep001" and response.context["others"] == ["ep003"]
    # Each episode's accepted take, its latest completed run: scenes take 5.0 s in
    # ep001_run3 and 9.0 s in ep003_run3; dialogue is half of it.
    assert comparison.self_time["ep001"]["scene_generation"] == pytest.approx(3 * 5.0 / 2)
    assert comparison.self_time["ep003"]["scene_generation"] == pytest.approx(3 * 9.0 / 2)
    delta = next(d for d in response.context["deltas"] if d.name == "scene_generation")
    (seconds, change, percent), = delta.values
    assert change == pytest.approx(3 * 4.0 / 2) and percent == pytest.approx(4.0 / 5.0 * 100)
    totals = {t["code"]: t for t in response.context["totals"]}
    assert totals["ep001"]["tokens_per_scene"] == pytest.approx(5700 / 3)
    assert totals["ep001"]["tokens_per_dialogue_line"] == pytest.approx(5700 / 42)
    assert set(comparison.model_cost["ep003"]) == {"openai/gpt-4o-mini", "openai/house-model"}
    assert comparison.op_cost["ep001"]["dialogue_writing"] == world["ep001_run3"].cost_usd
    take = world["ep001_run3"]
    assert totals["ep001"]["take_id"] == "ep001_run3" and totals["ep001"]["other_runs"] == 2
    assert totals["ep001"]["cost_per_scene_usd"] == pytest.approx(float(take.cost_usd) / 3)
    assert totals["ep001"]["seconds_per_line"] == pytest.approx(take.duration_s / 42)


def test_a_marked_baseline_or_a_chosen_one_is_the_reference(viewer, world):
    Session.objects.filter(external_id="ep002_run1").update(is_baseline=True)

    assert viewer.get("/episodes/compare/?episodes=ep001,ep002").context[
        "comparison"].reference == "ep002"
    assert viewer.get("/episodes/compare/?episodes=ep001,ep002&baseline=ep001").context[
        "comparison"].reference == "ep001"


def test_ticked_boxes_compare_in_code_order(viewer, world):
    response = viewer.get("/episodes/compare/?order=code&episodes=ep003&episodes=ep001")

    assert response.context["present"] == ["ep001", "ep003"]


def test_the_comparison_explains_missing_and_empty_choices(viewer, world):
    assert "Choose the episodes" in viewer.get("/episodes/compare/").content.decode()
    content = viewer.get("/episodes/compare/?episodes=ep001,ep999").content.decode()
    assert "No runs in these filters for: ep999" in content
    many = ",".join(f"ep{i:03}" for i in range(12))
    content = viewer.get(f"/episodes/compare/?episodes={many}").content.decode()
    assert "At most 8 episodes" in content


def test_the_deltas_export_as_csv(viewer, world):
    response = viewer.get("/episodes/compare/?episodes=ep001,ep002&export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert rows[0][:4] == ["operation", "ep001 self_time_s", "ep001 cost_usd", "ep002 self_time_s"]
    assert {row[0] for row in rows[1:]} >= {"scene_generation", "dialogue_writing"}


def test_an_episode_page_shows_every_run_its_extremes_and_budgets(viewer, world):
    response = viewer.get("/episodes/ep002/")

    assert [s.external_id for s in response.context["runs"]] == [
        "ep002_run3", "ep002_run2", "ep002_run1"]
    extremes = response.context["extremes"]
    assert extremes["fastest"].external_id == "ep002_run1"
    assert extremes["slowest"].external_id == "ep002_run3"
    budgets = {b["name"]: b for b in response.context["budgets"]}
    assert budgets["API error rate under 5%"]["failed"] == 1
    assert budgets["API error rate under 5%"]["checks"] == 3
    assert "runs" in response.context["charts"]
    assert viewer.get("/episodes/nope/").status_code == 404


def test_episode_pages_run_a_bounded_number_of_queries(viewer, api, world,
                                                       django_assert_max_num_queries):
    pages = ["/episodes/", "/episodes/compare/?episodes=ep001,ep002,ep003", "/episodes/ep001/"]
    counts = {}
    for page in pages:
        with django_assert_max_num_queries(25) as captured:
            assert viewer.get(page).status_code == 200
        counts[page] = len(captured.captured_queries)
    now = datetime.now(UTC)
    for i in range(24):
        code = EPISODES[i % 3] if i < 12 else f"ep{200 + i}"
        send(api, run_payload(f"more{i}", episode=code, started_at=now - timedelta(hours=i)))
    for page in pages:
        with django_assert_max_num_queries(counts[page]):
            viewer.get(page)


def test_an_episode_page_links_to_every_run_beyond_the_period(viewer, api, world):
    send(api, run_payload("ep001_old", episode="ep001",
                          started_at=datetime.now(UTC) - timedelta(days=90)))

    recent = viewer.get("/episodes/ep001/")
    everything = viewer.get("/episodes/ep001/?period=all")

    assert "ep001_old" not in [s.external_id for s in recent.context["runs"]]
    assert 'href="/episodes/ep001/?period=all"' in recent.content.decode()
    assert "ep001_old" in [s.external_id for s in everything.context["runs"]]
