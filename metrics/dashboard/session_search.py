"""The sessions list: search by session id, episode code or tag, and the problem filters
the overview's cards link to (failed, over budget, with API errors, unpriced)."""

import json

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.unpriced import with_unpriced_calls
from metrics.models import Project, Session

SORTS = {"started": "-started_at", "duration": "-duration_s", "cost": "-cost_usd",
         "cache": "cache_hit_rate"}
PROBLEMS = {
    "failed": "failed sessions",
    "violations": "sessions that failed a budget",
    "errors": "sessions with failed API calls",
    "unpriced": "sessions with unpriced calls",
}


def search_sessions(project: Project, filters: DashboardFilters, *, text: str = "",
                    problem: str = "", sort: str = "started") -> QuerySet[Session]:
    sessions = filters.sessions(project)
    if text:
        sessions = _matching(sessions, text)
    sessions = _with_problem(sessions, problem)
    order = SORTS.get(sort, SORTS["started"])
    return with_unpriced_calls(sessions).select_related("episode", "project").order_by(
        order if order.startswith("-") else f"{order}", "-started_at", "-pk")


def _matching(sessions: QuerySet[Session], text: str) -> QuerySet[Session]:
    """The id or the episode code contains the text, or one tag is exactly it."""
    words = Q(external_id__icontains=text) | Q(episode__code__icontains=text)
    if connection.vendor == "postgresql":
        return sessions.filter(words | Q(tags__contains=[text]))
    # As filters._with_tag: the stored JSON text holds each tag quoted.
    return sessions.annotate(_tags_text=Cast("tags", TextField())).filter(
        words | Q(_tags_text__contains=json.dumps(text)))


def _with_problem(sessions: QuerySet[Session], problem: str) -> QuerySet[Session]:
    if problem == "failed":
        return sessions.filter(status=Session.Status.FAILED)
    if problem == "violations":
        return sessions.filter(budget_failures_count__gt=0)
    if problem == "errors":
        return sessions.filter(api_errors_count__gt=0)
    if problem == "unpriced":
        # The count analysis keeps, not the calls: a session whose calls aged out still
        # has its unpriced ones counted.
        return sessions.filter(unpriced_calls_count__gt=0)
    return sessions
