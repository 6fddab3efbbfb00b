"""Which episodes are on one page of the episodes table, and how many there are in all.

A season holds thousands of episodes in one period, and the table shows a page of them.
Summing every figure of every episode to show fifty is what made the page grow with the
period, so the table is read in two steps: this module ranks the episodes by the sort key
alone (one narrow pass over the period's sessions, which the covering index
``session_episode_take`` serves without reading the session rows) and counts them in the
same query; then ``queries.episode_table`` sums the figures of that page's episodes only.

The ranking is the table's own: the sort key, nulls last either way, ties by code. A take
key (duration, cost, tokens, cache hit rate of the accepted take) is the take's value: the
run an editor accepted, if it is in the filters, else the latest completed run
(``takes.take_ids``), else none (null).
"""

from django.db import connection
from django.db.models import Case, F, IntegerField, QuerySet, Value, When

from metrics.models import Episode, Session

# sort name -> the per-episode key over the sessions ``s``, summed over every run
SUM_KEYS = {
    "code": None,
    "runs": "COUNT(*)",
    "last_run": "MAX(s.started_at)",
    "cost": "COALESCE(SUM(s.cost_usd), 0)",
    "failed": "COUNT(CASE WHEN s.status = 'failed' THEN 1 END)",
}
# sort name -> the key read from the accepted take's row alone
TAKE_KEYS = {
    "duration": "s.duration_s",
    "cost_per_run": "s.cost_usd",
    "tokens_per_run": "s.total_tokens",
    "cache": "s.cache_hits * 1.0 / NULLIF(s.cache_hits + s.cache_misses, 0)",
}
SESSION_COLUMNS = ("id", "episode_id", "started_at", "status", "duration_s", "cost_usd",
                   "total_tokens", "cache_hits", "cache_misses")


def ranked_episode_ids(sessions: QuerySet[Session], *, sort: str, offset: int,
                       limit: int) -> tuple[list[int], int]:
    """The ids of the episodes at ``offset`` to ``offset + limit`` in the table's order,
    and the number of episodes with runs in ``sessions`` (0 when the page is past the end).
    """
    name = sort.lstrip("-")
    direction = "DESC" if sort.startswith("-") else "ASC"
    inner, params = _sessions_sql(sessions, with_take=name in TAKE_KEYS)
    if name in TAKE_KEYS:
        keyed = (
            f"SELECT s.episode_id, CASE WHEN s.take_class < 2 THEN {TAKE_KEYS[name]} END AS k,"
            " ROW_NUMBER() OVER (PARTITION BY s.episode_id"
            " ORDER BY s.take_class, s.started_at DESC, s.id DESC) AS rn"
            f" FROM ({inner}) s"
        )
        ranked = f"SELECT episode_id, k FROM ({keyed}) t WHERE t.rn = 1"
    else:
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


def _sessions_sql(sessions: QuerySet[Session], *, with_take: bool) -> tuple[str, tuple]:
    """The sessions' SQL with the columns the keys read and, ``with_take``, each run's
    take class: 0 for the run its episode's editor accepted, 1 for a completed run, 2 for
    any other. The accepted run is read from the run's own episode (a join with the small
    episodes table), never as a list of every accepted run, which grows with every
    season."""
    query = sessions.filter(episode__isnull=False).order_by()
    columns = list(SESSION_COLUMNS)
    if with_take:
        query = query.annotate(take_class=Case(
            When(pk=F("episode__accepted_session_id"), then=Value(0)),
            When(status=Session.Status.COMPLETED, then=Value(1)),
            default=Value(2), output_field=IntegerField(),
        ))
        columns.append("take_class")
    return query.values(*columns).query.sql_with_params()
