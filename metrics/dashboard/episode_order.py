"""Which episodes are on one page of the episodes table, and how many there are in all.

A season holds thousands of episodes in one period, and the table shows a page of them.
Summing every figure of every episode to show fifty is what made the page grow with the
period, so the table is read in two steps: this module ranks the episodes by the sort key
alone and counts them in the same query; then ``queries.episode_table`` sums the figures
of that page's episodes only.

The ranking is the table's own: the sort key, nulls last either way, ties by code. A sum
key (runs, last run, cost, failed runs) is read in one narrow pass over the period's
sessions, which the covering index ``session_episode_take`` serves without reading the
session rows. A take key (duration, cost, tokens, cache hit rate of the take) is the take's
value: the run an editor accepted, if it is in the filters, else the latest completed run
(``takes.take_ids``), else none (null).

For a period that ends now and no other filter (the table as it opens), the episodes
themselves say which have runs in it, when their latest run began and which runs are their
takes (``KeptEpisodes``: what ``metrics.episode_runs`` keeps on each episode), so the code,
last-run and take keys read one row and at most two index probes per episode, however many
runs the period holds. With other filters they are found among the runs, in index order.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from metrics.dashboard.filters import DashboardFilters
from metrics.models import Episode, Project, Session

# sort name -> the per-episode key over the sessions ``s``, summed over every run
SUM_KEYS = {
    "code": None,
    "runs": "COUNT(*)",
    "last_run": "MAX(s.started_at)",
    "cost": "COALESCE(SUM(s.cost_usd), 0)",
    "failed": "COUNT(CASE WHEN s.status = 'failed' THEN 1 END)",
}
# sort name -> the key read from the take's row ``s`` alone
TAKE_KEYS = {
    "duration": "s.duration_s",
    "cost_per_run": "s.cost_usd",
    "tokens_per_run": "s.total_tokens",
    "cache": "s.cache_hits * 1.0 / NULLIF(s.cache_hits + s.cache_misses, 0)",
}
SESSION_COLUMNS = ("id", "episode_id", "started_at", "status", "duration_s", "cost_usd",
                   "total_tokens", "cache_hits", "cache_misses")


@dataclass(frozen=True)
class KeptEpisodes:
    """The episodes with runs in a period from ``since`` (None: ever) to now."""

    episodes: QuerySet[Episode]
    since: datetime | None


def kept_episodes(project: Project, filters: DashboardFilters, *,
                search: str = "") -> KeptEpisodes | None:
    """The episodes with runs in the filters, read through what each keeps: for a period
    that ends now and no other filter. None when the filters need the runs."""
    if filters.until is not None or filters.workflow or filters.needs_sessions():
        return None
    episodes = Episode.objects.filter(project=project)
    if filters.since is None:
        episodes = episodes.filter(latest_run_at__isnull=False)
    else:  # an episode has runs in the period if its latest run began in it
        episodes = episodes.filter(latest_run_at__gte=filters.since)
    if search:
        episodes = episodes.filter(code__icontains=search)
    return KeptEpisodes(episodes, filters.since)


def ranked_episode_ids(sessions: QuerySet[Session], *, sort: str, offset: int, limit: int,
                       kept: KeptEpisodes | None = None) -> tuple[list[int], int]:
    """The ids of the episodes at ``offset`` to ``offset + limit`` in the table's order,
    and the number of episodes with runs in ``sessions`` (0 when the page is past the end).
    ``kept``, when given, holds the same episodes as ``sessions``' runs.
    """
    name = sort.lstrip("-")
    direction = "DESC" if sort.startswith("-") else "ASC"
    if name in TAKE_KEYS and kept is not None:
        ranked, params = _take_keys_from_episodes(kept, TAKE_KEYS[name])
    elif name in ("code", "last_run") and kept is not None:
        ranked, params = _latest_runs_from_episodes(kept)
    elif name in TAKE_KEYS:
        ranked, params = _take_keys_from_runs(sessions, TAKE_KEYS[name])
    else:
        inner, params = _sessions_sql(sessions)
        key = SUM_KEYS.get(name) or "NULL"
        ranked = f"SELECT s.episode_id, {key} AS k FROM ({inner}) s GROUP BY s.episode_id"
    order = f"r.k {direction} NULLS LAST, e.code" if name != "code" else f"e.code {direction}"
    sql = (
        f"SELECT r.episode_id, COUNT(*) OVER () FROM ({ranked}) r"
        f" JOIN {Episode._meta.db_table} e ON e.id = r.episode_id"
        f" ORDER BY {order} LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
    return [row[0] for row in rows], rows[0][1] if rows else 0


def _latest_runs_from_episodes(kept: KeptEpisodes) -> tuple[str, tuple]:
    """Each episode and the start of its latest run, which began in the period."""
    episodes, params = kept.episodes.order_by().values(
        "id", "latest_run_at").query.sql_with_params()
    return f"SELECT e.id AS episode_id, e.latest_run_at AS k FROM ({episodes}) e", params


def _take_keys_from_episodes(kept: KeptEpisodes, key: str) -> tuple[str, tuple]:
    """Each episode's take read through its own row: the accepted run if it began in the
    period, else the latest completed run if that did. Correlated lookups by key, so
    each episode costs two index probes however many runs the period holds (joins let
    the planner read every session of the period instead)."""
    episodes, params = kept.episodes.order_by().values(
        "id", "accepted_session_id", "latest_completed_session_id").query.sql_with_params()
    in_period = "" if kept.since is None else " AND {}.started_at >= %s"
    since = () if kept.since is None else (kept.since,)
    table = Session._meta.db_table
    accepted_in_period = (
        f"EXISTS (SELECT 1 FROM {table} a WHERE a.id = e.accepted_session_id"
        f" AND a.episode_id = e.id{in_period.format('a')})"
    )
    sql = (
        f"SELECT e.id AS episode_id, (SELECT {key} FROM {table} s WHERE s.id ="
        f" CASE WHEN {accepted_in_period} THEN e.accepted_session_id"
        f" ELSE e.latest_completed_session_id END{in_period.format('s')}) AS k"
        f" FROM ({episodes}) e"
    )
    return sql, (*since, *since, *params)


def _take_keys_from_runs(sessions: QuerySet[Session], key: str) -> tuple[str, tuple]:
    """Each episode with runs in ``sessions`` and its take's ``key`` (null without a take).

    Three passes in the order of the index ``session_episode_take``, none of which sorts
    the runs: the episodes with runs, each episode's latest completed run (a window in
    index order), and the runs accepted by their own episode (read from the small
    episodes table). An accepted run's key stands even when it is null."""
    inner, params = _sessions_sql(sessions)
    runs = f"SELECT s.episode_id FROM ({inner}) s GROUP BY s.episode_id"
    latest = (
        f"SELECT l.episode_id, l.k FROM (SELECT s.episode_id, {key} AS k,"
        " ROW_NUMBER() OVER (PARTITION BY s.episode_id ORDER BY s.started_at DESC, s.id DESC)"
        f" AS rn FROM ({inner}) s WHERE s.status = %s) l WHERE l.rn = 1"
    )
    accepted = (
        f"SELECT s.episode_id, {key} AS k FROM ({inner}) s"
        f" JOIN {Episode._meta.db_table} a ON a.accepted_session_id = s.id"
        " AND a.id = s.episode_id"
    )
    sql = (
        "SELECT r.episode_id, CASE WHEN a.episode_id IS NOT NULL THEN a.k ELSE l.k END AS k"
        f" FROM ({runs}) r LEFT JOIN ({accepted}) a ON a.episode_id = r.episode_id"
        f" LEFT JOIN ({latest}) l ON l.episode_id = r.episode_id"
    )
    return sql, (*params, *params, *params, Session.Status.COMPLETED)


def _sessions_sql(sessions: QuerySet[Session]) -> tuple[str, tuple]:
    """The sessions' SQL with the columns the keys read."""
    query = sessions.filter(episode__isnull=False).order_by()
    return query.values(*SESSION_COLUMNS).query.sql_with_params()
