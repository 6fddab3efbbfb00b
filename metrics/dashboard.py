"""Reads behind the dashboard pages: one aggregate query per table or chart.

Every function takes the project and the page's filters and returns plain rows (dicts or
small dataclasses); views hand them to templates and to metrics.charts. Nothing here loops
over sessions or operations in Python: the database groups, the page gets a bounded result.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

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
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Mod, NullIf, TruncDate

from metrics.filters import DashboardFilters
from metrics.models import (
    ApiCall,
    BudgetCheck,
    CostLine,
    DailyCost,
    DailyOperation,
    Episode,
    Operation,
    OperationStat,
    Project,
    Session,
)
from metrics.quantiles import (
    QUARTILES,
    PercentileDisc,
    median_of,
    nearest_rank,
)

TREND_EPISODES = 30  # episodes on the overview's trend charts, the latest by last run
LATEST_SESSIONS = 20
RUNNING_SESSIONS = 20
COMPARE_NAMES = 15  # operation names on a comparison chart; the rest are summed as "other"
BOX_EPISODES = 15
TOP_RELEASES = 12

SCENES = "scenes_generated"
DIALOGUE_LINES = "dialogue_lines_generated"


def _hit_rate(hits, misses) -> float | None:
    lookups = (hits or 0) + (misses or 0)
    return (hits or 0) / lookups if lookups else None


def _counter_sum(name: str) -> Sum:
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
    """The overview's cards: one pass over the period's sessions (two off PostgreSQL)."""
    sessions = filters.sessions(project)
    completed = Q(status=Session.Status.COMPLETED)
    extra = {}
    if connection.vendor == "postgresql":
        extra["median_duration_s"] = PercentileDisc(
            "duration_s", 0.5, filter=completed, output_field=FloatField())
    row = sessions.aggregate(episodes=Count("episode", distinct=True), **SESSION_SUMS, **extra)
    row = with_rates(row)
    row["cost_per_episode_usd"] = row["cost_usd"] / row["episodes"] if row["episodes"] else None
    if not extra:
        row["median_duration_s"] = median_of(sessions.filter(completed), "duration_s")
    row["budget_violations"] = filters.apply(
        BudgetCheck.objects.filter(session__project=project, passed=False), "session__"
    ).count()
    return row


def episode_trends(project: Project, filters: DashboardFilters) -> list[dict]:
    """Per-run averages of the latest episodes (by last run), oldest first.

    The episodes come from the latest runs through the session index, and only their runs
    are summed: the cost does not grow with the number of sessions in the period.
    """
    episodes = latest_episode_ids(project, filters, limit=TREND_EPISODES)
    ids = session_ids(filters.sessions(project).filter(episode_id__in=episodes))
    rows = list(
        Session.objects.filter(pk__in=ids)
        .values("episode_id", code=F("episode__code"))
        .annotate(**SESSION_SUMS)
        .order_by("last_run", "episode_id")
    )
    return [with_rates(row) for row in rows]


def cost_by_episode_and_model(
    project: Project, filters: DashboardFilters, episode_ids: list[int]
) -> dict[tuple[int, str], Decimal]:
    """``{(episode id, "provider/model"): cost}`` over the filtered runs of those episodes."""
    episode_of = dict(
        filters.sessions(project).filter(episode_id__in=episode_ids).order_by()
        .values_list("pk", "episode_id")
    )
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
        filters.sessions(project).select_related("episode", "project")
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
    "duration": "avg_duration_s",
    "cost": "cost_usd",
    "cost_per_run": "sort_cost_per_run",
    "tokens_per_run": "sort_tokens_per_run",
    "cache": "sort_cache_hit_rate",
    "failed": "failed_runs",
}
DEFAULT_EPISODE_SORT = "-last_run"


def episode_table(
    project: Project, filters: DashboardFilters, *, sort: str, search: str = ""
) -> QuerySet:
    """One row per episode with runs in the filters, sorted in the database."""
    sessions = filters.sessions(project).filter(episode__isnull=False)
    if search:
        sessions = sessions.filter(episode__code__icontains=search)
    descending = sort.startswith("-")
    key = EPISODE_SORTS.get(sort.lstrip("-"), "last_run")
    order = F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_last=True)
    as_float = FloatField()
    return (
        sessions.values(code=F("episode__code"), title=F("episode__title"))
        # The sort keys first: in the same annotate() "cost_usd" would name the sum.
        .annotate(
            sort_cost_per_run=Cast(Sum("cost_usd"), as_float) / Count("pk"),
            sort_tokens_per_run=Cast(Sum("total_tokens"), as_float) / Count("pk"),
            sort_cache_hit_rate=Cast(Sum("cache_hits"), as_float)
            / NullIf(Sum("cache_hits") + Sum("cache_misses"), 0),
        )
        .annotate(**SESSION_SUMS)
        .order_by(order, "code")
    )


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


def table_page(table: QuerySet, *, number: str | None, per_page: int) -> TablePage:
    """One page of an aggregated table and the table's length, in one query: the length
    comes from a window count over the grouped rows instead of a second aggregation."""
    try:
        page = max(1, int(number or 1))
    except ValueError:
        page = 1
    # Past the last page anyway; bounded so the OFFSET fits the database's integers.
    page = min(page, MAX_PAGE)
    counted = table.annotate(_total=Window(Count("*")))
    rows = list(counted[(page - 1) * per_page: page * per_page])
    if not rows and page > 1:  # past the end: show the last page, as Paginator.get_page does
        total = table.count()
        page = max(1, -(-total // per_page))
        rows = list(counted[(page - 1) * per_page: page * per_page])
    total = rows[0]["_total"] if rows else 0
    return TablePage([with_rates(row) for row in rows], page, total, per_page)


def normalise_sort(sort: str) -> str:
    return sort if sort.lstrip("-") in EPISODE_SORTS else DEFAULT_EPISODE_SORT


# --- comparison ---------------------------------------------------------------------------


@dataclass
class Comparison:
    codes: list[str]
    reference: str
    totals: dict[str, dict]
    names: list[str]
    # per episode code: {operation name: per-run self time / cost}
    self_time: dict[str, dict[str, float]] = field(default_factory=dict)
    op_cost: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    model_cost: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)


def compare_episodes(
    project: Project, filters: DashboardFilters, codes: list[str], *, baseline: str = ""
) -> Comparison:
    sessions = filters.sessions(project).filter(episode__code__in=codes)
    totals = {
        row["code"]: _with_tokens_per_unit(with_rates(row))
        for row in sessions.values(code=F("episode__code")).annotate(
            **SESSION_SUMS, scenes=_counter_sum(SCENES), dialogue_lines=_counter_sum(DIALOGUE_LINES)
        ).order_by()
    }
    present = [code for code in codes if code in totals]
    reference = baseline if baseline in totals else _baseline_episode(sessions, present)
    comparison = Comparison(codes=present, reference=reference, totals=totals, names=[])
    if not present:
        return comparison
    runs = {code: totals[code]["runs"] for code in present}

    ids = session_ids(sessions)
    stats = OperationStat.objects.filter(session_id__in=ids).values(
        "name", code=F("session__episode__code")).annotate(self_s=Sum("self_time_s"))
    by_name: dict[str, float] = defaultdict(float)
    for row in stats.order_by():
        per_run = row["self_s"] / runs[row["code"]]
        comparison.self_time.setdefault(row["code"], {})[row["name"]] = per_run
        by_name[row["name"]] += per_run
    comparison.names = sorted(by_name, key=lambda n: (-by_name[n], n))

    calls = ApiCall.objects.filter(session_id__in=ids)
    for row in calls.values(code=F("session__episode__code"), name=F("operation__name")).annotate(
        cost=Sum("cost_usd")
    ).order_by():
        name = row["name"] if row["name"] is not None else "(no operation)"
        per_run = (row["cost"] or Decimal(0)) / runs[row["code"]]
        comparison.op_cost.setdefault(row["code"], {})[name] = per_run

    lines = CostLine.objects.filter(session_id__in=ids)
    models = set()
    for row in lines.values("provider", "model", code=F("session__episode__code")).annotate(
        cost=Sum("cost_usd")
    ).order_by():
        label = model_label(row["provider"], row["model"])
        models.add(label)
        comparison.model_cost.setdefault(row["code"], {})[label] = (
            (row["cost"] or Decimal(0)) / runs[row["code"]]
        )
    comparison.models = sorted(models)
    return comparison


def _with_tokens_per_unit(row: dict) -> dict:
    row["tokens_per_scene"] = row["tokens"] / row["scenes"] if row.get("scenes") else None
    row["tokens_per_dialogue_line"] = (
        row["tokens"] / row["dialogue_lines"] if row.get("dialogue_lines") else None
    )
    return row


def _baseline_episode(sessions: QuerySet, present: list[str]) -> str:
    """The first listed episode with a run marked as baseline, else the first listed."""
    marked = set(
        sessions.filter(is_baseline=True).values_list("episode__code", flat=True).distinct()
    )
    return next((code for code in present if code in marked), present[0] if present else "")


@dataclass(frozen=True)
class Delta:
    name: str
    reference_s: float | None
    values: list[tuple[float | None, float | None, float | None]]  # (s, Δs, Δ%) per episode
    reference_usd: Decimal | None
    costs: list[tuple[Decimal | None, Decimal | None]]  # (usd, Δusd) per episode

    @property
    def pairs(self) -> list[tuple[tuple, tuple]]:
        return list(zip(self.values, self.costs, strict=True))


def deltas(comparison: Comparison, others: list[str]) -> list[Delta]:
    ref = comparison.reference
    names = list(dict.fromkeys([*comparison.names, *_cost_names(comparison)]))
    result = []
    for name in names:
        ref_s = comparison.self_time.get(ref, {}).get(name)
        ref_usd = comparison.op_cost.get(ref, {}).get(name)
        values, costs = [], []
        for code in others:
            s = comparison.self_time.get(code, {}).get(name)
            delta = s - (ref_s or 0.0) if s is not None else None
            pct = delta / ref_s * 100 if delta is not None and ref_s else None
            values.append((s, delta, pct))
            usd = comparison.op_cost.get(code, {}).get(name)
            costs.append((usd, usd - (ref_usd or 0) if usd is not None else None))
        result.append(Delta(name, ref_s, values, ref_usd, costs))
    return result


def _cost_names(comparison: Comparison) -> list[str]:
    return sorted({name for costs in comparison.op_cost.values() for name in costs})


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


# --- operations ---------------------------------------------------------------------------


def operation_names(project: Project, filters: DashboardFilters, *, limit: int = 200) -> list:
    """Operation names by self time in the period, from the daily rollup when it can say."""
    if filters.session_only:
        source = filters.apply(OperationStat.objects.filter(session__project=project),
                               "session__")
    else:
        source = _daily(DailyOperation.objects.filter(project=project), filters)
    return list(
        source.values("name").annotate(self_s=Sum("self_time_s"))
        .order_by("-self_s", "name").values_list("name", flat=True)[:limit]
    )


def _daily(rollup: QuerySet, filters: DashboardFilters) -> QuerySet:
    """A by-day rollup cut to the period and workflow (the filters it has columns for)."""
    if filters.since is not None:
        rollup = rollup.filter(day__gte=filters.since.date())
    if filters.workflow:
        rollup = rollup.filter(workflow=filters.workflow)
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


def operation_by_episode(
    project: Project, filters: DashboardFilters, name: str
) -> dict[str, dict]:
    """Duration quartiles (and "n") of each occurrence of ``name`` in the latest episodes."""
    episodes = latest_episode_ids(project, filters, limit=BOX_EPISODES)
    if not episodes:
        return {}
    episode_of = dict(
        filters.sessions(project).filter(episode_id__in=episodes).order_by()
        .values_list("pk", "episode__code")
    )
    # The durations of these few episodes' occurrences are fetched and ranked here: grouped
    # by episode in SQL they would need a join to every session of the project.
    durations: dict[str, list[float]] = defaultdict(list)
    occurrences = Operation.objects.filter(
        session_id__in=list(episode_of), name=name, duration_s__isnull=False
    ).values_list("session_id", "duration_s")
    for session_id, duration in occurrences.iterator(chunk_size=10_000):
        durations[episode_of[session_id]].append(duration)
    return {
        code: {"n": len(values), **{q: nearest_rank(values, q) for q in QUARTILES}}
        for code, values in sorted(durations.items())
    }


# Percentiles of the runs over time and by release come from at most this many runs of the
# period, every k-th by id when there are more: a bounded read however busy the period was
# (a thousand runs are 30 or more a day over a month).
RUNS_SAMPLED = 1000


@dataclass(frozen=True)
class RunSample:
    means: dict[int, float]  # session id -> the run's mean duration of the operation
    day: dict[int, object]
    release: dict[int, str]
    last: dict[int, object]
    step: int  # 1: every run of the period; k: every k-th


def sample_runs(project: Project, filters: DashboardFilters, name: str) -> RunSample:
    sessions = filters.sessions(project)
    step = max(1, -(-sessions.count() // RUNS_SAMPLED))
    if step > 1:
        sessions = sessions.annotate(_pick=Mod("id", step)).filter(_pick=0)
    runs = list(sessions.order_by().values_list("pk", "started_at", "release"))
    means = dict(
        OperationStat.objects.filter(
            session_id__in=[pk for pk, _, _ in runs], name=name, occurrences__gt=0
        ).annotate(mean=F("total_duration_s") / F("occurrences"))
        .values_list("session_id", "mean")
    )
    return RunSample(
        means=means,
        day={pk: started.date() for pk, started, _ in runs if pk in means},
        release={pk: release for pk, _, release in runs if pk in means and release},
        last={pk: started for pk, started, _ in runs if pk in means},
        step=step,
    )


def _percentiles(values: list[float]) -> dict:
    return {"runs": len(values), "p50_s": nearest_rank(values, 0.5),
            "p95_s": nearest_rank(values, 0.95)}


def operation_over_time(
    project: Project, filters: DashboardFilters, name: str, sample: RunSample
) -> list[dict]:
    """Per day: p50 and p95 of the (sampled) runs' mean duration, and the exact mean per
    occurrence from the daily rollup (or the runs' lines when the rollup cannot filter)."""
    by_day: dict[object, list[float]] = defaultdict(list)
    for pk, mean in sample.means.items():
        by_day[sample.day[pk]].append(mean)
    if filters.session_only:
        sums = filters.apply(
            OperationStat.objects.filter(session__project=project, name=name), "session__"
        ).annotate(day=TruncDate("session__started_at")).values("day")
    else:
        sums = _daily(DailyOperation.objects.filter(project=project, name=name), filters) \
            .values("day")
    sums = sums.annotate(total=Sum("total_duration_s"), occurrences=Sum("occurrences")) \
        .order_by("day")
    return [
        {
            "day": row["day"],
            "occurrences": row["occurrences"],
            "mean_s": row["total"] / row["occurrences"] if row["occurrences"] else None,
            **_percentiles(by_day.get(row["day"], [])),
        }
        for row in sums
    ]


def operation_by_release(sample: RunSample) -> list[dict]:
    """p50 and p95 of the (sampled) runs' mean duration for the latest releases."""
    by_release: dict[str, list[float]] = defaultdict(list)
    last: dict[str, object] = {}
    for pk, release in sample.release.items():
        by_release[release].append(sample.means[pk])
        last[release] = max(last.get(release, sample.last[pk]), sample.last[pk])
    latest = sorted(by_release, key=lambda release: last[release])[-TOP_RELEASES:]
    return [{"release": release, **_percentiles(by_release[release])} for release in latest]


# --- costs --------------------------------------------------------------------------------

COST_SUMS = ("calls", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
             "cost_usd", "unpriced_calls")


def cost_rows(project: Project, filters: DashboardFilters) -> list[dict]:
    """API usage by day, workflow and model in the filters: one grouped query.

    From the daily cost rollup, or from the per-session cost lines when a filter the
    rollup has no column for (environment, release, tag) is set. The rows number at most
    days × workflows × models, so the charts and tables below are cut from them in Python.
    """
    if filters.session_only:
        source = filters.apply(CostLine.objects.filter(session__project=project), "session__")
        keys = {"workflow": F("session__workflow")}
    else:
        source = _daily(DailyCost.objects.filter(project=project), filters)
        keys = {"k_workflow": F("workflow")}
    rows = source.values("day", "provider", "model", **keys).annotate(
        **{f"sum_{name}": Sum(name) for name in COST_SUMS}).order_by("day")
    return [
        {"day": r["day"], "provider": r["provider"], "model": r["model"],
         "workflow": r.get("workflow", r.get("k_workflow")) or "",
         **{name: r[f"sum_{name}"] or 0 for name in COST_SUMS}}
        for r in rows
    ]


def cost_over_time(rows: list[dict], by: str) -> dict[tuple, Decimal]:
    """``{(day, model / provider / workflow label): cost}``."""
    result: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in rows:
        if by == "model":
            label = model_label(row["provider"], row["model"])
        else:
            label = row[by] or f"(no {by})"
        result[(row["day"], label)] += Decimal(row["cost_usd"])
    return dict(result)


def cost_by_model(rows: list[dict]) -> list[dict]:
    """Totals per model, dearest first, with the calls the price table could not price."""
    models: dict[tuple, dict] = {}
    for row in rows:
        key = (row["provider"], row["model"])
        entry = models.setdefault(key, {"provider": key[0], "model": key[1],
                                        "label": model_label(*key), "first_day": row["day"],
                                        "last_day": row["day"],
                                        **dict.fromkeys(COST_SUMS, 0)})
        for name in COST_SUMS:
            entry[name] += row[name]
        entry["first_day"] = min(entry["first_day"], row["day"])
        entry["last_day"] = max(entry["last_day"], row["day"])
    return sorted(models.values(), key=lambda m: (-m["cost_usd"], m["label"]))


def recent_episode_codes(project: Project, filters: DashboardFilters, *, limit: int = 5):
    """Codes of the latest episodes, oldest first (the what-if default)."""
    ids = latest_episode_ids(project, filters, limit=limit)
    codes = dict(Episode.objects.filter(pk__in=ids).values_list("pk", "code"))
    return [codes[pk] for pk in reversed(ids)]
