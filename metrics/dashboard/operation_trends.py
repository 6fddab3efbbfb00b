"""Reads behind the operations page: one operation name across episodes, days and releases."""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import (
    F,
    Sum,
)
from django.db.models.functions import Mod, TruncDate

from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.quantiles import (
    QUARTILES,
    nearest_rank,
)
from metrics.dashboard.queries import daily, latest_episode_ids
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


