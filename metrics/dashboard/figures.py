"""Each dashboard page's figures: the page's data in, embedded Plotly figures out.

The chart shapes live in charts.py; here they are filled with one page's numbers, so the
views only gather data and render.
"""

from urllib.parse import urlencode

from django.urls import reverse

from metrics.dashboard import charts
from metrics.dashboard.comparisons import Comparison
from metrics.dashboard.queries import COMPARE_NAMES
from metrics.dashboard.waterfall import Waterfall


def episode_links(codes, qs: str = "") -> dict[str, str]:
    return {code: reverse("metrics:episode_detail", args=[code]) + qs for code in codes}


def session_links(ids, qs: str = "") -> dict[str, str]:
    return {i: reverse("metrics:session_detail", args=[i]) + qs for i in ids}


def overview_figures(trends: list[dict], costs: dict[tuple[int, str], float],
                     qs: str = "") -> dict[str, str]:
    """Trends across episodes: duration, cost per run by model, cache hit rate, tokens;
    a click on a point or bar opens that episode."""
    codes = [row["code"] for row in trends]
    links = episode_links(codes, qs)
    models = sorted({model for _, model in costs})
    by_model = {
        model: [costs.get((row["episode_id"], model), 0) / row["runs"] for row in trends]
        for model in models
    }
    figures = {
        "duration": charts.per_episode_line(
            codes, [row["avg_duration_s"] for row in trends], y_title="accepted take (s)"),
        "cost": charts.stacked_by_series(
            codes, by_model, y_title="accepted take (USD)", money=True, kind="model"),
        "cache": charts.per_episode_line(
            codes, [row["cache_hit_rate"] for row in trends], y_title="cache hit rate",
            percent=True),
        "tokens": charts.per_episode_line(
            codes, [row["tokens_per_run"] for row in trends], y_title="tokens"),
    }
    return {name: charts.embed(charts.linked(fig, "x", links)) for name, fig in figures.items()}


def comparison_figures(comparison: Comparison, ordered: list[str],
                       qs: str = "") -> dict[str, str]:
    """Self time per operation, cost by model, cache hit rate and tokens, side by side."""
    names = comparison.names[: COMPARE_NAMES]
    rest = comparison.names[COMPARE_NAMES:]
    self_time = {}
    for code in ordered:
        values = comparison.self_time.get(code, {})
        row = [values.get(name, 0.0) for name in names]
        if rest:
            row.append(sum(values.get(name, 0.0) for name in rest))
        self_time[code] = row
    categories = names + (["(other operations)"] if rest else [])
    totals = comparison.totals
    links = episode_links(ordered, qs)
    return {
        "self_time": charts.embed(charts.linked(charts.grouped_bars(
            categories, self_time, y_title="self time per run (s)", height=400,
            kind="episode", unit="s"), "name", links)),
        "cost": charts.embed(charts.linked(charts.stacked_by_series(
            ordered,
            {model: [comparison.model_cost.get(c, {}).get(model, 0) for c in ordered]
             for model in comparison.models},
            y_title="cost per run (USD)", money=True, kind="model"), "x", links)),
        "cache": charts.embed(charts.grouped_bars(
            ["cache hit rate (%)"],
            {c: [(totals[c]["cache_hit_rate"] or 0) * 100] for c in ordered},
            y_title="%", kind="episode", unit="%")),
        "tokens": charts.embed(charts.grouped_bars(
            ["tokens per scene", "tokens per dialogue line"],
            {c: [totals[c]["tokens_per_scene"], totals[c]["tokens_per_dialogue_line"]]
             for c in ordered},
            y_title="tokens", kind="episode", unit="tokens")),
    }


def episode_figures(runs: list, operations: list[dict], qs: str = "") -> dict[str, str]:
    """An episode's runs over time (oldest first; a click opens the run) and its self time
    per operation."""
    ids = [s.external_id for s in runs]
    return {
        "runs": charts.embed(charts.linked(charts.runs_over_time(
            [s.started_at for s in runs], [s.duration_s for s in runs],
            [s.cost_usd for s in runs], ids,
            [s.status for s in runs]), "text", session_links(ids, qs))),
        "operations": charts.embed(charts.horizontal_bars(
            [o["name"] for o in operations], [o["per_run_s"] for o in operations],
            x_title="self time per run (s)")),
    }


def session_figures(flow: Waterfall, *, elapsed_s: float, external_id: str = "",
                    qs: str = "") -> dict[str, str]:
    """The session's timeline of operations, if it has any; a click on a group of
    siblings lists its operations (fetched when asked)."""
    if not flow.bars:
        return {}
    fig = charts.waterfall(flow.bars, session_elapsed_s=elapsed_s)
    if flow.groups and external_id:
        base = reverse("metrics:operation_group", args=[external_id])
        extra = "&" + qs.lstrip("?") if qs else ""
        charts.linked(fig, "detail", {
            f"{parent}\u0000{name}": f"{base}?{urlencode({'parent': parent, 'name': name})}"
            + extra for parent, name in flow.groups})
    return {"waterfall": charts.embed(fig)}


def operation_figures(
    by_episode: dict, over_time: list[dict], by_release: list[dict]
) -> dict[str, str]:
    """One operation name: its quartiles per episode, percentiles over time and by release."""
    figures = {}
    if by_episode:
        figures["episodes"] = charts.embed(
            charts.quartile_boxes(by_episode, y_title="duration of one occurrence (s)"))
    if over_time:
        figures["time"] = charts.embed(charts.percentile_lines(
            [row["day"] for row in over_time],
            {"p50 of runs": [row["p50_s"] for row in over_time],
             "p95 of runs": [row["p95_s"] for row in over_time],
             "mean per occurrence": [row["mean_s"] for row in over_time]},
            y_title="seconds"))
    if by_release:
        figures["release"] = charts.embed(charts.percentile_lines(
            [row["release"] for row in by_release],
            {"p50 of runs": [row["p50_s"] for row in by_release],
             "p95 of runs": [row["p95_s"] for row in by_release]},
            y_title="seconds", category_axis=True))
    return figures


def cost_figures(cell: dict, what_if: dict, by: str) -> dict[str, str]:
    """Cost over time by the chosen grouping, and the what-if against actual cost."""
    days = sorted({day for day, _ in cell})
    keys = sorted({key for _, key in cell})
    figures = {}
    if cell:
        figures["time"] = charts.embed(charts.stacked_by_series(
            [d.isoformat() for d in days],
            {key: [cell.get((d, key), 0) for d in days] for key in keys},
            y_title="cost (USD)", money=True, category_axis=False, kind=by))
    if what_if.get("rows"):
        priced = what_if["rows"]
        figures["what_if"] = charts.embed(charts.actual_vs_what_if(
            [r.episode for r in priced], [r.actual_cost_usd for r in priced],
            [r.what_if_cost_usd for r in priced], model=what_if["model"]))
    return figures


def session_comparison_figures(comparison) -> dict[str, str]:
    """Self time per operation, session against session."""
    if not comparison.names:
        return {}
    series = {s.external_id: [comparison.self_time.get(s.external_id, {}).get(name, 0.0)
                              for name in comparison.names]
              for s in comparison.sessions}
    return {"self_time": charts.embed(charts.grouped_bars(
        comparison.names, series, y_title="self time (s)", height=380, unit="s"))}
