"""Each episode keeps its latest run and latest completed run as its runs are stored,
finished, moved and deleted; the episodes table ranks the takes read through them as it
ranks the takes found among the runs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from ingest.otlp.carry import carry_and_retire
from metrics import tasks
from metrics.dashboard import episode_order, takes
from metrics.dashboard.filters import DashboardFilters
from metrics.deletion import delete_sessions
from metrics.models import Episode, Session
from tests.dashboard.world import run_payload, send

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)


def kept(code: str) -> tuple[datetime | None, str | None]:
    episode = Episode.objects.get(code=code)
    latest = episode.latest_completed_session
    return episode.latest_run_at, latest.external_id if latest else None


def test_the_latest_runs_follow_runs_stored_finished_and_deleted(api):
    send(api, run_payload("live", episode="ep01", started_at=NOW - timedelta(hours=1),
                          status="running"))
    assert kept("ep01") == (NOW - timedelta(hours=1), None)

    send(api, run_payload("older", episode="ep01", started_at=NOW - timedelta(hours=3)))
    assert kept("ep01") == (NOW - timedelta(hours=1), "older")

    live = send(api, run_payload("live", episode="ep01", started_at=NOW - timedelta(hours=1)))
    assert kept("ep01") == (NOW - timedelta(hours=1), "live")

    delete_sessions(Session.objects.filter(pk=live.pk))
    assert kept("ep01") == (NOW - timedelta(hours=3), "older")


def test_analysis_puts_right_latest_runs_an_interrupted_ingest_left_behind(api):
    # Ingest refreshes the episode just after its commit; a process that died between the
    # two left it as it was, and the session's analysis refreshes it again.
    run = send(api, run_payload("r1", episode="ep01", started_at=NOW - timedelta(hours=2)))
    Episode.objects.filter(code="ep01").update(latest_run_at=None,
                                               latest_completed_session=None)

    assert tasks.analyze_session(run.pk)
    assert kept("ep01") == (NOW - timedelta(hours=2), "r1")


def test_a_resend_under_another_episode_moves_the_latest_runs(api):
    send(api, run_payload("r1", episode="ep01", started_at=NOW - timedelta(hours=2)))
    send(api, run_payload("r1", episode="ep02", started_at=NOW - timedelta(hours=2)))

    assert kept("ep01") == (None, None)
    assert kept("ep02") == (NOW - timedelta(hours=2), "r1")


def test_a_trace_session_absorbed_into_its_named_session_leaves_the_latest_runs(api):
    # OTLP: a trace stored before its root named the session is retired into it
    send(api, run_payload("older", episode="ep01", started_at=NOW - timedelta(hours=3)))
    waiting = send(api, run_payload("trace", episode="ep01",
                                    started_at=NOW - timedelta(hours=1)))
    assert kept("ep01") == (NOW - timedelta(hours=1), "trace")

    with transaction.atomic():
        carry_and_retire(waiting)

    assert kept("ep01") == (NOW - timedelta(hours=3), "older")


@pytest.fixture
def awkward_season(api):
    """Episodes whose takes are hard to find: ep01's accepted run is older than the week,
    its latest completed run inside it; ep02's latest completed run is older than the
    week, a running run inside it; ep03 only has a failed run; ep04 accepted a failed run
    after a completed one; ep05's accepted run is a cold, uncached run (null hit rate);
    ep06 has a single run ten days old; ep07 a plain run."""
    def run(name, episode, days, **fields):
        return send(api, run_payload(name, episode=episode,
                                     started_at=NOW - timedelta(days=days), **fields))
    takes.accept(run("ep01_old", "ep01", 9, scenes=8))
    run("ep01_new", "ep01", 1, scenes=2)
    run("ep02_done", "ep02", 10, scenes=5)
    run("ep02_live", "ep02", 2, status="running")
    run("ep03_failed", "ep03", 3, status="failed", failed_scene=0)
    run("ep04_done", "ep04", 4, scenes=3)
    takes.accept(run("ep04_failed", "ep04", 2, status="failed", failed_scene=1, scenes=6))
    cold = run("ep05_cold", "ep05", 1, scenes=4)
    Session.objects.filter(pk=cold.pk).update(cache_hits=0, cache_misses=0)
    takes.accept(cold)
    run("ep05_newer", "ep05", 0.5, scenes=1)
    run("ep06_old", "ep06", 10, scenes=7)
    run("ep07", "ep07", 0.2, scenes=4)


CASES = [(period, search, f"{way}{key}")
         for period in ("7d", "30d", "all") for search in ("", "ep0")
         for key in (*episode_order.TAKE_KEYS, "last_run", "code") for way in ("", "-")]


@pytest.mark.parametrize(("period", "search", "sort"), CASES)
def test_episodes_read_through_what_they_keep_rank_as_among_the_runs(
        awkward_season, project, period, search, sort):
    filters = DashboardFilters(period=period)
    sessions = filters.sessions(project).filter(episode__isnull=False)
    if search:
        sessions = sessions.filter(episode__code__icontains=search)
    source = episode_order.kept_episodes(project, filters, search=search)

    from_runs = episode_order.ranked_episode_ids(sessions, sort=sort, offset=0, limit=50)
    through_episodes = episode_order.ranked_episode_ids(sessions, sort=sort, offset=0,
                                                        limit=50, kept=source)

    assert through_episodes == from_runs
    assert from_runs[1] == {"7d": 6, "30d": 7, "all": 7}[period]


def test_the_week_ranks_each_take_by_hand(awkward_season, project):
    filters = DashboardFilters(period="7d")
    source = episode_order.kept_episodes(project, filters)
    codes = dict(Episode.objects.values_list("pk", "code"))

    ids, _ = episode_order.ranked_episode_ids(filters.sessions(project), sort="-duration",
                                              offset=0, limit=50, kept=source)

    # durations 1 + 7 s a scene: ep04's failed take 43 s, ep05's cold take 29 s, ep07
    # 29 s (ties by code), ep01's new run 15 s; ep02 (running) and ep03 (failed) none
    assert [codes[pk] for pk in ids] == ["ep04", "ep05", "ep07", "ep01", "ep02", "ep03"]


def test_other_filters_read_the_takes_from_the_runs(project):
    assert episode_order.kept_episodes(project, DashboardFilters(release="1.0")) is None
    assert episode_order.kept_episodes(project, DashboardFilters(workflow="w")) is None
    assert episode_order.kept_episodes(
        project, DashboardFilters(period="custom", date_to="2026-11-01")) is None
    assert episode_order.kept_episodes(project, DashboardFilters(period="7d")) is not None
