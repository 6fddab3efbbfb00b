"""The episodes table in pages: the page's episodes are ranked in the database by the sort
key alone, the figures summed for them only, and the count is of every episode."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from metrics.dashboard import queries, takes, views
from metrics.models import Session
from tests.dashboard.world import run_payload, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def season(api, monkeypatch):
    """ep01..ep07 with one completed run each, ep0N with N scenes (longer as N grows), an
    hour apart, ep07 the latest; ep03 also has an older nine-scene run; ep08 only a
    running run, older than every other. Three episodes a page."""
    monkeypatch.setattr(views, "EPISODES_PER_PAGE", 3)
    now = datetime.now(UTC).replace(microsecond=0)
    runs = {}
    for n in range(1, 8):
        runs[f"ep{n:02}"] = send(api, run_payload(
            f"ep{n:02}_run", episode=f"ep{n:02}", started_at=now - timedelta(hours=8 - n),
            scenes=n))
    runs["ep03_old"] = send(api, run_payload(
        "ep03_old", episode="ep03", started_at=now - timedelta(hours=9), scenes=9))
    runs["ep08"] = send(api, run_payload(
        "ep08_live", episode="ep08", started_at=now - timedelta(hours=10), status="running"))
    return runs


def pages(viewer, sort: str) -> list[list[str]]:
    found = []
    for number in (1, 2, 3):
        response = viewer.get(f"/episodes/?sort={sort}&page={number}")
        assert response.context["page"].count == 8
        assert response.context["page"].num_pages == 3
        found.append([row["code"] for row in response.context["rows"]])
    return found


def test_pages_follow_the_latest_run_and_reach_every_episode(viewer, season):
    assert pages(viewer, "-last_run") == [
        ["ep07", "ep06", "ep05"], ["ep04", "ep03", "ep02"], ["ep01", "ep08"]]
    assert pages(viewer, "last_run") == [
        ["ep08", "ep01", "ep02"], ["ep03", "ep04", "ep05"], ["ep06", "ep07"]]


def test_a_sum_sorts_across_pages_with_ties_by_code(viewer, season):
    assert pages(viewer, "-runs") == [
        ["ep03", "ep01", "ep02"], ["ep04", "ep05", "ep06"], ["ep07", "ep08"]]
    assert pages(viewer, "code") == [
        ["ep01", "ep02", "ep03"], ["ep04", "ep05", "ep06"], ["ep07", "ep08"]]
    assert pages(viewer, "-code") == [
        ["ep08", "ep07", "ep06"], ["ep05", "ep04", "ep03"], ["ep02", "ep01"]]


def test_a_take_key_ranks_by_the_take_and_no_take_comes_last_both_ways(viewer, season):
    # ep03's take is its latest completed run (3 scenes), not its longer older one
    assert pages(viewer, "-duration") == [
        ["ep07", "ep06", "ep05"], ["ep04", "ep03", "ep02"], ["ep01", "ep08"]]
    assert pages(viewer, "duration") == [
        ["ep01", "ep02", "ep03"], ["ep04", "ep05", "ep06"], ["ep07", "ep08"]]


def test_an_accepted_take_moves_its_episode(viewer, season):
    takes.accept(season["ep03_old"])

    assert pages(viewer, "-duration")[0] == ["ep03", "ep07", "ep06"]


def test_an_accepted_failed_run_stands_as_the_take(api, viewer, season):
    # ep01's accepted run failed in its second scene, after its latest completed run
    failed = send(api, run_payload("ep01_failed", episode="ep01", status="failed",
                                   failed_scene=1, scenes=12,
                                   started_at=datetime.now(UTC) - timedelta(hours=11)))
    takes.accept(failed)
    duration = Session.objects.get(pk=failed.pk).duration_s

    assert duration > Session.objects.get(pk=season["ep07"].pk).duration_s
    assert pages(viewer, "-duration")[0] == ["ep01", "ep07", "ep06"]


def test_an_accepted_run_outside_the_filters_gives_way_to_the_latest_in_them(
        api, viewer, season):
    # ep02's accepted run, of another release, is its longest: under the filter of ep02's
    # other runs' release, the take is the latest of those (two scenes) again
    send(api, run_payload("ep02_other", episode="ep02", scenes=20, release="generator 2.0",
                          started_at=datetime.now(UTC) - timedelta(hours=11)))
    takes.accept(Session.objects.get(external_id="ep02_other"))

    response = viewer.get("/episodes/?sort=duration&release=generator+1.4.2")
    assert [row["code"] for row in response.context["rows"]] == ["ep01", "ep02", "ep03"]
    response = viewer.get("/episodes/?sort=duration")
    assert [row["code"] for row in response.context["rows"]] == ["ep01", "ep03", "ep04"]


def test_a_page_shows_the_same_figures_as_the_whole_table(viewer, season):
    row = viewer.get("/episodes/?sort=-last_run&page=2").context["rows"][1]

    ep03 = Session.objects.filter(episode__code="ep03")
    assert row["code"] == "ep03" and row["runs"] == 2
    assert row["take_id"] == "ep03_run"
    assert row["take_duration_s"] == season["ep03"].duration_s
    assert row["cost_usd"] == sum(s.cost_usd for s in ep03)


def test_a_page_past_the_end_shows_the_last_page(viewer, season):
    response = viewer.get("/episodes/?page=9")

    assert response.context["page"].number == 3
    assert [row["code"] for row in response.context["rows"]] == ["ep01", "ep08"]
    assert b"Page 3 of 3" in response.content and b"8 episodes" in response.content


def test_the_search_pages_and_counts_only_its_matches(viewer, season):
    response = viewer.get("/episodes/?q=ep0&sort=code&page=3")
    assert [row["code"] for row in response.context["rows"]] == ["ep07", "ep08"]

    response = viewer.get("/episodes/?q=3")
    assert response.context["page"].count == 1
    assert [row["code"] for row in response.context["rows"]] == ["ep03"]


SORTS = [f"{way}{key}" for key in queries.EPISODE_SORTS for way in ("", "-")]


@pytest.mark.parametrize("sort", SORTS)
def test_the_pages_rank_episodes_as_the_whole_table_orders_them(api, viewer, season, sort):
    # Two implementations of one order: the pages rank in SQL of their own
    # (metrics.dashboard.episode_order), the CSV export sorts the whole table with the
    # ORM (queries.episode_table). Every sort key, both ways, must agree.
    send(api, run_payload("ep05_failed", episode="ep05", status="failed", failed_scene=0,
                          started_at=datetime.now(UTC) - timedelta(hours=12)))
    csv_rows = list(csv.reader(io.StringIO(
        b"".join(viewer.get(f"/episodes/?sort={sort}&export=csv").streaming_content)
        .decode())))[1:]

    assert sum(pages(viewer, sort), []) == [row[0] for row in csv_rows]
