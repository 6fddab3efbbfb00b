"""Regressions: a session worse than its workflow's baseline by a ratio and a floor."""

import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

from metrics.models import OperationStat, Regression, Session


@dataclass(frozen=True)
class Baseline:
    kind: str
    sessions: list[tuple[int, str, float]]  # pk, external id, cost


def baseline_for(session: Session) -> Baseline | None:
    """Sessions marked as baseline for the workflow, else its previous N completed runs."""
    peers = (
        Session.objects.filter(
            project_id=session.project_id,
            workflow=session.workflow,
            status=Session.Status.COMPLETED,
            analyzed_at__isnull=False,
        )
        .exclude(pk=session.pk)
        .values_list("pk", "external_id", "cost_usd")
    )
    marked = list(peers.filter(is_baseline=True))
    if marked:
        return Baseline(Regression.BaselineKind.MARKED, _as_floats(marked))
    previous = list(
        peers.filter(started_at__lt=session.started_at).order_by("-started_at")[
            : settings.REGRESSION_PREVIOUS_SESSIONS
        ]
    )
    if previous:
        return Baseline(Regression.BaselineKind.PREVIOUS, _as_floats(previous))
    return None


def _as_floats(rows) -> list[tuple[int, str, float]]:
    return [(pk, external_id, float(cost)) for pk, external_id, cost in rows]


def find_regressions(session: Session) -> list[Regression]:
    if not session.is_finished or not session.workflow:
        return []
    baseline = baseline_for(session)
    if baseline is None:
        return []
    compared = [external_id for _, external_id, _ in baseline.sessions]

    def regression(metric: str, name: str, value: float, base: float) -> Regression:
        return Regression(
            session=session, metric=metric, name=name, value=value, baseline_value=base,
            ratio=value / base if base else float("inf"), baseline_kind=baseline.kind,
            baseline_sessions=compared,
        )

    found = []
    baseline_self_times = _median_self_times([pk for pk, _, _ in baseline.sessions])
    own = OperationStat.objects.filter(session=session).values_list("name", "self_time_s")
    for name, self_time in own:
        base = baseline_self_times.get(name)
        if base is not None and _worse(self_time, base, floor=settings.REGRESSION_FLOOR_S):
            found.append(regression(Regression.Metric.SELF_TIME, name, self_time, base))
    base_cost = statistics.median(cost for _, _, cost in baseline.sessions)
    cost = float(session.cost_usd)
    if _worse(cost, base_cost, floor=settings.REGRESSION_FLOOR_USD):
        found.append(regression(Regression.Metric.COST, "", cost, base_cost))
    return found


def _median_self_times(session_pks: list[int]) -> dict[str, float]:
    by_name: dict[str, list[float]] = defaultdict(list)
    rows = OperationStat.objects.filter(session_id__in=session_pks).values_list(
        "name", "self_time_s"
    )
    for name, self_time in rows:
        by_name[name].append(self_time)
    return {name: statistics.median(times) for name, times in by_name.items()}


def _worse(value: float, base: float, *, floor: float) -> bool:
    return value - base > floor and value > base * settings.REGRESSION_RATIO
