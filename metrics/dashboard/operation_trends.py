"""Reads behind the operations page: one operation name across episodes, days and releases."""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    FloatField,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Mod, TruncDate

from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.quantiles import (
    QUARTILES,
    PercentileDisc,
    nearest_rank,
)
from metrics.dashboard.queries import daily, latest_episode_ids, session_ids
from metrics.models import (
    DailyOperation,
    Operation,
    OperationStat,
    Project,
)

BOX_EPISODES = 15
TOP_RELEASES = 12


def operation_names(project: Project, filters: DashboardFilters, *, limit: int = 200) -> list:
    """Operation names by self time in the period, from the daily rollup when it can say."""
    if filters.session_only:
        source = filters.apply(OperationStat.objects.filter(session__project=project),
                               "session__")
    else:
        source = daily(DailyOperation.objects.filter(project=project), filters)
    return list(
        source.values("name").annotate(self_s=Sum("self_time_s"))
        .order_by("-self_s", "name").values_list("name", flat=True)[:limit]
    )


@dataclass(frozen=True)
class EpisodeDurations:
    boxes: dict[str, dict]  # episode code -> duration quartiles and "n"
    # Runs of these episodes with occurrences of the name whose operations aged out under
    # retention: their durations are not in the boxes.
    aged_out_runs: int = 0


def operation_by_episode(project: Project, filters: DashboardFilters, name: str
                         ) -> EpisodeDurations:
    """Duration quartiles (and "n") of each occurrence of ``name`` in the latest episodes.

    Only that name's rows of these episodes' runs are read, from the (session, name,
    duration) index alone.
    """
    episodes = latest_episode_ids(project, filters, limit=BOX_EPISODES)
    if not episodes:
        return EpisodeDurations({})
    runs = filters.sessions(project).filter(episode_id__in=episodes).order_by()
    episode_of = dict(runs.filter(detail_pruned_at__isnull=True)
                      .values_list("pk", "episode__code"))
    occurrences = Operation.objects.filter(
        session_id__in=list(episode_of), name=name, duration_s__isnull=False
    ).order_by()
    quartiles = _quartiles_in_sql if connection.vendor == "postgresql" else _quartiles_here
    return EpisodeDurations(
        boxes=dict(sorted(quartiles(occurrences, episode_of).items())),
        aged_out_runs=OperationStat.objects.filter(
            session_id__in=session_ids(runs.filter(detail_pruned_at__isnull=False)),
            name=name, occurrences__gt=0,
        ).count(),
    )


def _quartiles_in_sql(occurrences: QuerySet, episode_of: dict[int, str]) -> dict[str, dict]:
    """Grouped by episode in the query: each run's episode is spelled out by run id, so
    no session row is joined and the index holds every column read."""
    runs_of: dict[str, list[int]] = defaultdict(list)
    for pk, code in episode_of.items():
        runs_of[code].append(pk)
    episode = Case(*(When(session_id__in=pks, then=Value(code)) for code, pks in runs_of.items()),
                   output_field=CharField())
    rows = occurrences.annotate(code=episode).values("code").annotate(
        n=Count("duration_s"),
        **{f"q{i}": PercentileDisc("duration_s", q, output_field=FloatField())
           for i, q in enumerate(QUARTILES)},
    )
    return {row["code"]: {"n": row["n"], **{q: row[f"q{i}"] for i, q in enumerate(QUARTILES)}}
            for row in rows}


def _quartiles_here(occurrences: QuerySet, episode_of: dict[int, str]) -> dict[str, dict]:
    """Without ordered-set aggregates (SQLite): the few episodes' durations, ranked here."""
    durations: dict[str, list[float]] = defaultdict(list)
    rows = occurrences.values_list("session_id", "duration_s")
    for session_id, duration in rows.iterator(chunk_size=10_000):
        durations[episode_of[session_id]].append(duration)
    return {code: {"n": len(values), **{q: nearest_rank(values, q) for q in QUARTILES}}
            for code, values in durations.items()}


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
    step = max(1, -(-_runs_to_sample(project, filters, name) // RUNS_SAMPLED))
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


def _runs_to_sample(project: Project, filters: DashboardFilters, name: str) -> int:
    """How many runs of the operation the period holds, to choose the sample step by: from
    the daily rollup (a few rows a day) when it can apply the filters, else counted among
    the period's runs (a read of every run in the period). Both count a run once if it has
    the operation's figures (one ``OperationStat`` per run and name)."""
    if filters.session_only:
        return filters.sessions(project).filter(operation_stats__name=name).count()
    rows = daily(DailyOperation.objects.filter(project=project, name=name), filters)
    return rows.aggregate(runs=Sum("sessions"))["runs"] or 0


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
        sums = daily(DailyOperation.objects.filter(project=project, name=name), filters) \
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


