"""Reads behind the dashboard pages: one aggregate query per table or chart.

Every function takes the project and the page's filters and returns plain rows (dicts or
small dataclasses); views hand them to templates and to metrics.charts. Nothing here loops
over sessions or operations in Python: the database groups, the page gets a bounded result.
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, NullIf

from metrics.dashboard.episode_order import kept_episodes, ranked_episode_ids
from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.quantiles import (
    PercentileDisc,
    median_of,
)
from metrics.dashboard.takes import COLD, is_take, take_ids
from metrics.dashboard.unpriced import with_unpriced_calls
from metrics.models import (
    BudgetCheck,
    CostLine,
    OperationStat,
    Project,
    Session,
)

TREND_EPISODES = 30  # episodes on the overview's trend charts, the latest by last run
LATEST_SESSIONS = 20
RUNNING_SESSIONS = 20
COMPARE_NAMES = 15  # operation names on a comparison chart; the rest are summed as "other"

SCENES = "scenes_generated"
DIALOGUE_LINES = "dialogue_lines_generated"


def _hit_rate(hits, misses) -> float | None:
    lookups = (hits or 0) + (misses or 0)
    return (hits or 0) / lookups if lookups else None


def counter_sum(name: str) -> Sum:
    return Sum(Cast(KeyTextTransform(name, "counters"), FloatField()))


SESSION_SUMS = {
    "runs": Count("pk"),
    "failed_runs": Count("pk", filter=Q(status=Session.Status.FAILED)),
    "avg_duration_s": Avg("duration_s"),
    "cost_usd": Coalesce(Sum("cost_usd"), Decimal(0)),
    "cache_hits": Coalesce(Sum("cache_hits"), 0),
    "cache_misses": Coalesce(Sum("cache_misses"), 0),
    "api_calls": Coalesce(Sum("api_calls_count"), 0),
    "api_errors": Coalesce(Sum("api_errors_count"), 0),
    "tokens": Coalesce(Sum("total_tokens"), 0),
    "last_run": Max("started_at"),
}


def session_ids(sessions: QuerySet) -> list[int]:
    """The sessions' ids as a list, to filter their rows with.

    Given ``session_id = ANY(<list>)`` PostgreSQL reads the rows of just those sessions
    through the per-session indexes; given a join on the session's episode it can misjudge
    how many sessions match and scan every row of an operation name instead.
    """
    return list(sessions.order_by().values_list("pk", flat=True))


def with_rates(row: dict) -> dict:
    runs = row.get("runs") or 0
    row["cache_hit_rate"] = _hit_rate(row["cache_hits"], row["cache_misses"])
    row["api_error_rate"] = row["api_errors"] / row["api_calls"] if row["api_calls"] else None
    row["cost_per_run_usd"] = row["cost_usd"] / runs if runs else None
    row["tokens_per_run"] = row["tokens"] / runs if runs else None
    return row


# --- overview ---------------------------------------------------------------------------


def kpis(project: Project, filters: DashboardFilters) -> dict:
    """The overview's cards: one pass over the period's sessions (two off PostgreSQL),
    which the period index ``session_project_start`` serves without the session rows."""
    sessions = filters.sessions(project)
    completed = Q(status=Session.Status.COMPLETED)
    extra = {}
    if connection.vendor == "postgresql":
        extra["median_duration_s"] = PercentileDisc(
            "duration_s", 0.5, filter=completed, output_field=FloatField())
    row = sessions.aggregate(
        episodes=Count("episode", distinct=True), **SESSION_SUMS,
        unpriced_calls=Coalesce(Sum("unpriced_calls_count"), 0),
        budget_violations=Coalesce(Sum("budget_failures_count"), 0), **extra)
    row = with_rates(row)
    row["cost_per_episode_usd"] = row["cost_usd"] / row["episodes"] if row["episodes"] else None
    if not extra:
        row["median_duration_s"] = median_of(sessions.filter(completed), "duration_s")
    return row


def episode_trends(project: Project, filters: DashboardFilters) -> list[dict]:
    """The accepted take of each of the latest episodes (by last run), oldest first.

    The episodes come from the latest runs through the session index, and only their runs
    are summed: the cost does not grow with the number of sessions in the period.
    """
    episodes = latest_episode_ids(project, filters, limit=TREND_EPISODES)
    takes = take_ids(filters.sessions(project).filter(episode_id__in=episodes))
    rows = list(
        Session.objects.filter(pk__in=list(takes.values()))
        .values("episode_id", code=F("episode__code"))
        .annotate(**SESSION_SUMS, take_pk=Max("pk"))
        .order_by("last_run", "episode_id")
    )
    return [with_rates(row) for row in rows]


def cost_by_episode_and_model(trends: list[dict]) -> dict[tuple[int, str], Decimal]:
    """``{(episode id, "provider/model"): cost}`` of each trend row's accepted take."""
    episode_of = {row["take_pk"]: row["episode_id"] for row in trends}
    # Grouped by run, not by the run's episode: that would join every session of the
    # project; the runs are few, so they are folded into episodes here.
    rows = (
        CostLine.objects.filter(session_id__in=list(episode_of))
        .values("session_id", "provider", "model")
        .annotate(cost=Sum("cost_usd"))
        .order_by()
    )
    result: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        key = (episode_of[r["session_id"]], model_label(r["provider"], r["model"]))
        result[key] += r["cost"] or 0
    return dict(result)


def model_label(provider: str, model: str) -> str:
    if not provider and not model:
        return "(unknown model)"
    return f"{provider}/{model}" if provider else model


def latest_sessions(project: Project, filters: DashboardFilters, *, limit=LATEST_SESSIONS):
    return list(
        with_unpriced_calls(filters.sessions(project)).select_related("episode", "project")
        .order_by("-started_at", "-pk")[:limit]
    )


def running_sessions(project: Project, filters: DashboardFilters, *, limit=RUNNING_SESSIONS):
    return list(
        filters.sessions(project).filter(status=Session.Status.RUNNING)
        .select_related("episode", "project").order_by("-started_at", "-pk")[:limit]
    )


# --- episodes -----------------------------------------------------------------------------

EPISODE_SORTS = {
    "code": "code",
    "runs": "runs",
    "last_run": "last_run",
    "duration": "sort_take_duration_s",
    "cost": "cost_usd",
    "cost_per_run": "sort_cost_per_run",
    "tokens_per_run": "sort_tokens_per_run",
    "cache": "sort_cache_hit_rate",
    "failed": "failed_runs",
}
DEFAULT_EPISODE_SORT = "-last_run"


def episode_sessions(project: Project, filters: DashboardFilters, *, search: str = ""
                     ) -> QuerySet:
    """The runs the episodes table counts: of an episode, in the filters and the search."""
    sessions = filters.sessions(project).filter(episode__isnull=False)
    if search:
        sessions = sessions.filter(episode__code__icontains=search)
    return sessions


def episode_table(
    project: Project, filters: DashboardFilters, *, sort: str, search: str = "",
    episode_ids: list[int] | None = None,
) -> QuerySet:
    """One row per episode with runs in the filters, sorted in the database; only the
    episodes ``episode_ids`` when given (a page of the table)."""
    sessions = episode_sessions(project, filters, search=search)
    if episode_ids is not None:
        sessions = sessions.filter(episode_id__in=episode_ids)
    descending = sort.startswith("-")
    key = EPISODE_SORTS.get(sort.lstrip("-"), "last_run")
    order = F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_last=True)
    as_float = FloatField()
    take = is_take(take_ids(sessions))
    return (
        sessions.values("episode_id", code=F("episode__code"), title=F("episode__title"))
        # The sort keys first: in the same annotate() "cost_usd" would name the sum.
        .annotate(
            sort_cost_per_run=Cast(Max("cost_usd", filter=take), as_float),
            sort_tokens_per_run=Cast(Max("total_tokens", filter=take), as_float),
            sort_cache_hit_rate=Cast(Max("cache_hits", filter=take), as_float)
            / NullIf(Max("cache_hits", filter=take) + Max("cache_misses", filter=take), 0),
            sort_take_duration_s=Max("duration_s", filter=take),
            **take_figures(take),
        )
        .annotate(**SESSION_SUMS)
        .order_by(order, "code")
    )


def take_figures(take: Q) -> dict:
    """The accepted take's own figures, beside the sums over every run."""
    return {
        "take_id": Max("external_id", filter=take),
        "take_duration_s": Max("duration_s", filter=take),
        "take_cost_usd": Max("cost_usd", filter=take),
        "take_tokens": Max("total_tokens", filter=take),
        "take_cache_hits": Max("cache_hits", filter=take),
        "take_cache_misses": Max("cache_misses", filter=take),
        "take_api_calls": Max("api_calls_count", filter=take),
        "take_api_errors": Max("api_errors_count", filter=take),
        "cold_runs": Count("pk", filter=COLD),
    }


def with_take_rates(row: dict) -> dict:
    row["take_cache_hit_rate"] = _hit_rate(row.get("take_cache_hits"),
                                           row.get("take_cache_misses"))
    calls = row.get("take_api_calls")
    row["take_api_error_rate"] = row["take_api_errors"] / calls if calls else None
    return row


@dataclass(frozen=True)
class TablePage:
    rows: list[dict]
    number: int
    count: int  # rows on every page together
    per_page: int

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def has_other_pages(self) -> bool:
        return self.num_pages > 1


MAX_PAGE = 1_000_000


def episode_table_page(project: Project, filters: DashboardFilters, *, sort: str,
                       search: str = "", number: str | None, per_page: int) -> TablePage:
    """One page of the episodes table and the number of episodes in it.

    The page's episodes are ranked first, by the sort key alone, over the period's runs
    (``episode_order``); only their figures are then summed, so a page costs the same
    however many episodes the period holds beyond it.
    """
    try:
        page = max(1, int(number or 1))
    except ValueError:
        page = 1
    # Past the last page anyway; bounded so the OFFSET fits the database's integers.
    page = min(page, MAX_PAGE)
    sessions = episode_sessions(project, filters, search=search)
    rank = partial(ranked_episode_ids, sessions, sort=sort, limit=per_page,
                   kept=kept_episodes(project, filters, search=search))
    ids, total = rank(offset=(page - 1) * per_page)
    if not ids and page > 1:  # past the end: show the last page, as Paginator.get_page does
        total = sessions.order_by().values("episode_id").distinct().count()
        page = max(1, -(-total // per_page))
        ids, total = rank(offset=(page - 1) * per_page)
    rows = {row["episode_id"]: row for row in episode_table(
        project, filters, sort=sort, search=search, episode_ids=ids)}
    return TablePage([with_take_rates(with_rates(rows[pk])) for pk in ids if pk in rows],
                     page, total, per_page)


def normalise_sort(sort: str) -> str:
    return sort if sort.lstrip("-") in EPISODE_SORTS else DEFAULT_EPISODE_SORT


# --- one episode --------------------------------------------------------------------------


def episode_runs(project: Project, filters: DashboardFilters, episode_id: int) -> QuerySet:
    return filters.sessions(project).filter(episode_id=episode_id)


def best_and_worst(runs: QuerySet) -> dict[str, Session | None]:
    completed = runs.filter(status=Session.Status.COMPLETED, duration_s__isnull=False)
    return {
        "fastest": completed.order_by("duration_s", "pk").first(),
        "slowest": completed.order_by("-duration_s", "-pk").first(),
        "cheapest": completed.order_by("cost_usd", "pk").first(),
        "dearest": completed.order_by("-cost_usd", "-pk").first(),
    }


def budget_summary(runs: QuerySet) -> list[dict]:
    return list(
        BudgetCheck.objects.filter(session_id__in=session_ids(runs))
        .values("budget_id", name=F("budget__name"), metric=F("budget__metric"),
                threshold=F("budget__threshold"))
        .annotate(
            checks=Count("pk"),
            failed=Count("pk", filter=Q(passed=False)),
            best=Max("value"),
            latest=Max("session__started_at"),
        )
        .order_by("name")
    )


def self_time_per_run(runs: QuerySet, *, limit: int = COMPARE_NAMES) -> list[dict]:
    count = runs.count()
    rows = (
        OperationStat.objects.filter(session_id__in=session_ids(runs))
        .values("name")
        .annotate(self_s=Sum("self_time_s"), occurrences=Sum("occurrences"),
                  failures=Sum("failures"))
        .order_by("-self_s", "name")[:limit]
    )
    return [{**row, "per_run_s": row["self_s"] / count} for row in rows] if count else []

def daily(rollup: QuerySet, filters: DashboardFilters, *, release: bool = False) -> QuerySet:
    """A by-day rollup cut to the period and workflow (the filters every one has columns
    for) and, for a rollup with a release column, to the release."""
    if filters.since is not None:
        rollup = rollup.filter(day__gte=filters.since.date())
    if filters.until is not None:
        rollup = rollup.filter(day__lt=filters.until.date())
    if filters.workflow:
        rollup = rollup.filter(workflow=filters.workflow)
    if release and filters.release:
        rollup = rollup.filter(release=filters.release)
    return rollup


# Enough recent sessions to find the latest episodes among them however many runs each has.
RECENT_SESSIONS_SCANNED = 500


def latest_episode_ids(project: Project, filters: DashboardFilters, *, limit: int) -> list[int]:
    """The episodes of the most recent runs, latest first: one indexed, limited query."""
    recent = (
        filters.sessions(project).filter(episode__isnull=False)
        .order_by("-started_at", "-pk").values_list("episode_id", flat=True)
    )
    return list(dict.fromkeys(recent[:RECENT_SESSIONS_SCANNED]))[:limit]
