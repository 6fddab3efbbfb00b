"""Every figure with its unit, and people's words for the ids the data model uses.

Budgets and regressions store plain floats (a rate as 0.05, a cost as 0.5); what a person
reads is "5%" and "$0.5000". One table per kind of id says which unit each carries.
"""

from decimal import Decimal

from metrics.models import Budget, Regression

SECONDS, PERCENT, USD, TOKENS, MEGABYTES = "s", "%", "$", "tokens", "MB"

BUDGET_UNITS = {
    Budget.Metric.DURATION_S: SECONDS,
    Budget.Metric.CACHE_HIT_RATE: PERCENT,
    Budget.Metric.COST_USD: USD,
    Budget.Metric.API_ERROR_RATE: PERCENT,
    Budget.Metric.TOKENS_PER_SCENE: TOKENS,
    Budget.Metric.COST_PER_SCENE_USD: USD,
    Budget.Metric.SECONDS_PER_SCENE: SECONDS,
    Budget.Metric.PEAK_MEMORY_MB: MEGABYTES,
}
BUDGET_LABELS = {
    Budget.Metric.DURATION_S: "Session duration",
    Budget.Metric.CACHE_HIT_RATE: "Cache hit rate",
    Budget.Metric.COST_USD: "Cost per run",
    Budget.Metric.API_ERROR_RATE: "API error rate",
    Budget.Metric.TOKENS_PER_SCENE: "Tokens per scene",
    Budget.Metric.COST_PER_SCENE_USD: "Cost per scene",
    Budget.Metric.SECONDS_PER_SCENE: "Time per scene",
    Budget.Metric.PEAK_MEMORY_MB: "Peak memory",
}
REGRESSION_UNITS = {Regression.Metric.SELF_TIME: SECONDS, Regression.Metric.COST: USD}


def with_unit(value, unit: str) -> str:
    """0.05 with "%" → "5.0%", 12.5 with "s" → "12.50s", None → "—" (never 0)."""
    if value is None:
        return "—"
    number = float(value) if isinstance(value, Decimal) else value
    if unit == PERCENT:
        return f"{number * 100:.1f}%"
    if unit == USD:
        return f"${number:,.4f}"
    if unit == SECONDS:
        return f"{number:,.2f}s"
    if unit == TOKENS:
        return f"{number:,.0f} tokens"
    if unit == MEGABYTES:
        return f"{number:,.1f} MB"
    return f"{number:,.3f}"


def budget_value(value, metric: str) -> str:
    return with_unit(value, BUDGET_UNITS.get(metric, ""))


def budget_label(metric: str) -> str:
    return BUDGET_LABELS.get(metric, humanize(metric))


def budget_rule(metric: str, threshold: float) -> str:
    """A budget's target in words: "at most 5.0%", "at least 60.0%"."""
    side = "at least" if metric in Budget.AT_LEAST else "at most"
    return f"{side} {budget_value(threshold, metric)}"


def regression_value(value, metric: str) -> str:
    return with_unit(value, REGRESSION_UNITS.get(metric, ""))


def humanize(key: str) -> str:
    """A counter's or setting's id as words: "scenes_generated" → "Scenes generated"."""
    words = str(key).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else "—"
