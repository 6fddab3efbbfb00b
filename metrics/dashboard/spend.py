"""Reads behind the costs page: spend by day, model, provider and workflow."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import (
    F,
    Sum,
)

from metrics.dashboard.filters import DashboardFilters
from metrics.dashboard.queries import daily, latest_episode_ids, model_label
from metrics.models import (
    CostLine,
    DailyCost,
    Episode,
    Project,
)

COST_SUMS = ("calls", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
             "cost_usd", "unpriced_calls")


def from_cost_lines(filters: DashboardFilters) -> bool:
    """Whether the costs are summed from the sessions' cost lines: a filter is set that the
    daily cost rollup has no column for (environment, tag; it has one for the release)."""
    return filters.needs_sessions(rollup_has=("release",))


def cost_rows(project: Project, filters: DashboardFilters) -> list[dict]:
    """API usage by day, workflow and model in the filters: one grouped query.

    From the daily cost rollup, or from the per-session cost lines when ``from_cost_lines``.
    The rows number at most days × workflows × releases × models, so the charts and tables
    below are cut from them in Python.
    """
    if from_cost_lines(filters):
        source = filters.apply(CostLine.objects.filter(session__project=project), "session__")
        keys = {"workflow": F("session__workflow")}
    else:
        source = daily(DailyCost.objects.filter(project=project), filters, release=True)
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
