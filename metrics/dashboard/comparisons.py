"""Reads behind the compare page: episodes side by side, and their changes against one."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import CharField, Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.queries import (
    DIALOGUE_LINES,
    SCENES,
    SESSION_SUMS,
    counter_sum,
    model_label,
    session_ids,
    with_rates,
)
from metrics.dashboard.takes import take_ids
from metrics.models import (
    CostLine,
    Episode,
    OperationStat,
    Project,
    Session,
)


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
    # The episodes by the (project, code) index first: filtered by code through the join,
    # the episode table is read whole for every query below.
    code_of = dict(Episode.objects.filter(project=project, code__in=codes)
                   .values_list("pk", "code"))
    every_run = filters.sessions(project).filter(episode_id__in=list(code_of))
    # Each episode's accepted take stands for it; its other runs are only counted.
    runs_of = {code_of[row["episode_id"]]: row for row in every_run.values("episode_id").annotate(
        all_runs=Count("pk"), failed=Count("pk", filter=Q(status=Session.Status.FAILED)),
    ).order_by()}
    sessions = every_run.filter(pk__in=list(take_ids(every_run).values()))
    totals = {
        row["code"]: _with_units(with_rates(row), runs_of.get(row["code"], {}))
        for row in sessions.values(code=F("episode__code")).annotate(
            **SESSION_SUMS, scenes=counter_sum(SCENES), dialogue_lines=counter_sum(DIALOGUE_LINES),
            take_id=Max("external_id"),
        ).order_by()
    }
    present = [code for code in codes if code in totals]
    reference = baseline if baseline in totals else _baseline_episode(every_run, present)
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

    for row in _cost_by_operation(ids):
        name = row["name"] if row["name"] is not None else NO_OPERATION
        per_run = (row["cost"] or Decimal(0)) / runs[row["code"]]
        costs = comparison.op_cost.setdefault(row["code"], {})
        costs[name] = costs.get(name, Decimal(0)) + per_run

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


NO_OPERATION = "(no operation)"


def _cost_by_operation(ids: list[int]) -> list[dict]:
    """(episode code, operation name, cost) rows of these sessions, name None for cost
    made outside any operation.

    From the per-name figures analysis keeps (the cost of the calls made in each name's
    operations) and the session's cost beyond them: no raw call is read, so a session
    whose calls aged out counts as it did before.
    """
    by_name = (
        OperationStat.objects.filter(session_id__in=ids, cost_usd__isnull=False)
        .values("name", code=F("session__episode__code"))
        .annotate(cost=Sum("cost_usd")).order_by()
    )
    return [*by_name, *_cost_outside_operations(ids)]


def _cost_outside_operations(ids: list[int]) -> QuerySet:
    """Per episode code, what the sessions cost beyond their operations' figures."""
    attributed = Subquery(
        OperationStat.objects.filter(session=OuterRef("pk")).order_by().values("session")
        .annotate(total=Sum("cost_usd")).values("total")
    )
    rest = F("cost_usd") - Coalesce(attributed, Value(Decimal(0)))
    return (
        Session.objects.filter(pk__in=ids).values(code=F("episode__code"))
        .annotate(cost=Sum(rest), name=Value(None, output_field=CharField()))
        .exclude(cost=0).order_by()
    )


def _with_units(row: dict, runs: dict) -> dict:
    """Tokens, cost and time per scene and per dialogue line; the other runs' counts."""
    scenes, lines = row.get("scenes"), row.get("dialogue_lines")
    row["tokens_per_scene"] = row["tokens"] / scenes if scenes else None
    row["tokens_per_dialogue_line"] = row["tokens"] / lines if lines else None
    cost, seconds = float(row["cost_usd"]), row["avg_duration_s"]
    row["cost_per_scene_usd"] = cost / scenes if scenes else None
    row["cost_per_line_usd"] = cost / lines if lines else None
    row["seconds_per_scene"] = seconds / scenes if scenes and seconds is not None else None
    row["seconds_per_line"] = seconds / lines if lines and seconds is not None else None
    row["other_runs"] = runs.get("all_runs", 1) - 1
    row["failed_runs_all"] = runs.get("failed", 0)
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


