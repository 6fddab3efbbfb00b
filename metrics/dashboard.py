"""Reads behind the dashboard pages: one aggregate query per table or chart.

Every function takes the project and the page's filters and returns plain rows (dicts or
small dataclasses); views hand them to templates and to metrics.charts. Nothing here loops
over sessions or operations in Python: the database groups, the page gets a bounded result.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, NullIf, TruncDate

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
from metrics.quantiles import QUARTILES, grouped_quantiles

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
    sessions = filters.sessions(project)
    row = sessions.aggregate(episodes=Count("episode", distinct=True), **SESSION_SUMS)
    row = with_rates(row)
    row["cost_per_episode_usd"] = row["cost_usd"] / row["episodes"] if row["episodes"] else None
    row["median_duration_s"] = median_of(
        sessions.filter(status=Session.Status.COMPLETED), "duration_s"
    )
    row["budget_violations"] = filters.apply(
        BudgetCheck.objects.filter(session__project=project, passed=False), "session__"
    ).count()
    return row


def median_of(qs: QuerySet, value: str) -> float | None:
    """Nearest-rank median by count and offset: two small queries on any database."""
    present = qs.filter(**{f"{value}__isnull": False}).order_by()
    n = present.count()
    if not n:
        return None
    return present.order_by(value).values_list(value, flat=True)[(n + 1) // 2 - 1]


def episode_trends(project: Project, filters: DashboardFilters) -> list[dict]:
    """Per-run averages of the latest episodes (by last run), oldest first."""
    rows = list(
        filters.sessions(project)
        .filter(episode__isnull=False)
        .values("episode_id", code=F("episode__code"))
        .annotate(**SESSION_SUMS)
        .order_by("-last_run", "-episode_id")[:TREND_EPISODES]
    )
    rows.reverse()
    return [with_rates(row) for row in rows]


def cost_by_episode_and_model(
    project: Project, filters: DashboardFilters, episode_ids: list[int]
) -> dict[tuple[int, str], Decimal]:
    """``{(episode id, "provider/model"): cost}`` over the filtered runs of those episodes."""
    ids = session_ids(filters.sessions(project).filter(episode_id__in=episode_ids))
    rows = (
        CostLine.objects.filter(session_id__in=ids)
        .values("session__episode_id", "provider", "model")
        .annotate(cost=Sum("cost_usd"))
        .order_by()
    )
    return {
        (r["session__episode_id"], model_label(r["provider"], r["model"])): r["cost"] or 0
        for r in rows
    }


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
    runs = (
        filters.sessions(project).filter(episode_id__in=episodes).order_by()
        .values_list("pk", "episode__code")
    )
    by_code: dict[str, list[int]] = defaultdict(list)
    for pk, code in runs:
        by_code[code].append(pk)
    if not by_code:
        return {}
    # The episode of each run as a CASE over the run ids: grouping by a join to the
    # sessions would read the whole session table, this reads only these runs' operations.
    episode_of = Case(*(When(session_id__in=pks, then=Value(code))
                        for code, pks in by_code.items()), output_field=CharField())
    occurrences = Operation.objects.filter(
        session_id__in=[pk for pks in by_code.values() for pk in pks], name=name)
    quartiles = grouped_quantiles(
        occurrences, group=episode_of, value="duration_s", quantiles=QUARTILES
    )
    return {code: quartiles[code] for code in sorted(quartiles)}


def _per_run_means(project: Project, filters: DashboardFilters, name: str) -> QuerySet:
    return filters.apply(
        OperationStat.objects.filter(session__project=project, name=name, occurrences__gt=0),
        "session__",
    ).annotate(mean_s=F("total_duration_s") / F("occurrences"))


def operation_over_time(project: Project, filters: DashboardFilters, name: str) -> list[dict]:
    """Per day: p50 and p95 of the per-run mean duration, and the mean per occurrence."""
    stats = _per_run_means(project, filters, name)
    day = TruncDate("session__started_at")
    quantiles = grouped_quantiles(stats, group=day, value="mean_s", quantiles=(0.5, 0.95))
    if filters.session_only:
        sums = stats.annotate(day=day).values("day")
    else:
        sums = _daily(DailyOperation.objects.filter(project=project, name=name), filters) \
            .values("day")
    sums = sums.annotate(total=Sum("total_duration_s"), occurrences=Sum("occurrences")) \
        .order_by("day")
    return [
        {
            "day": row["day"],
            "runs": quantiles.get(row["day"], {}).get("n", 0),
            "occurrences": row["occurrences"],
            "mean_s": row["total"] / row["occurrences"] if row["occurrences"] else None,
            "p50_s": quantiles.get(row["day"], {}).get(0.5),
            "p95_s": quantiles.get(row["day"], {}).get(0.95),
        }
        for row in sums
    ]


def operation_by_release(project: Project, filters: DashboardFilters, name: str) -> list[dict]:
    """p50 and p95 of the per-run mean duration for the latest releases, oldest first."""
    stats = _per_run_means(project, filters, name).exclude(session__release="")
    quantiles = grouped_quantiles(
        stats, group="session__release", value="mean_s", quantiles=(0.5, 0.95),
        extra={"last": Max("session__started_at")},
    )
    latest = sorted(quantiles, key=lambda release: quantiles[release]["last"])[-TOP_RELEASES:]
    return [
        {"release": release, "runs": quantiles[release]["n"],
         "p50_s": quantiles[release].get(0.5), "p95_s": quantiles[release].get(0.95)}
        for release in latest
    ]


# --- costs --------------------------------------------------------------------------------

COST_KEYS = {"model": ("provider", "model"), "provider": ("provider",), "workflow": ("workflow",)}


def cost_over_time(project: Project, filters: DashboardFilters, by: str) -> list[dict]:
    """``[{day, key, cost}]`` from the daily rollup, or from the per-session lines when a
    filter the rollup has no column for is set."""
    keys = COST_KEYS[by]
    if filters.session_only:
        source = filters.apply(CostLine.objects.filter(session__project=project), "session__")
        fields = {k: F(f"session__{k}") if k == "workflow" else F(k) for k in keys}
        rows = source.values("day", **{f"k_{k}": v for k, v in fields.items()})
    else:
        source = _daily(DailyCost.objects.filter(project=project), filters)
        rows = source.values("day", **{f"k_{k}": F(k) for k in keys})
    rows = rows.annotate(cost=Sum("cost_usd")).order_by("day")
    result = []
    for row in rows:
        if by == "model":
            label = model_label(row["k_provider"], row["k_model"])
        else:
            label = row[f"k_{by}"] or f"(no {by})"
        result.append({"day": row["day"], "key": label, "cost": row["cost"] or Decimal(0)})
    return result


def cost_by_model(project: Project, filters: DashboardFilters) -> list[dict]:
    """Totals per model in the period, with calls the price table could not price."""
    sums = {
        "calls": Sum("calls"), "errors": Sum("errors"), "tokens": Sum("total_tokens"),
        "prompt_tokens": Sum("prompt_tokens"), "completion_tokens": Sum("completion_tokens"),
        "cost": Sum("cost_usd"), "unpriced_calls": Sum("unpriced_calls"),
        "first_day": Min("day"), "last_day": Max("day"),
    }
    if filters.session_only:
        source = filters.apply(CostLine.objects.filter(session__project=project), "session__")
    else:
        source = _daily(DailyCost.objects.filter(project=project), filters)
    rows = source.values("provider", "model").annotate(**sums).order_by("-cost", "model")
    return [{**row, "label": model_label(row["provider"], row["model"])} for row in rows]


def recent_episode_codes(project: Project, filters: DashboardFilters, *, limit: int = 5):
    """Codes of the latest episodes, oldest first (the what-if default)."""
    ids = latest_episode_ids(project, filters, limit=limit)
    codes = dict(Episode.objects.filter(pk__in=ids).values_list("pk", "code"))
    return [codes[pk] for pk in reversed(ids)]
