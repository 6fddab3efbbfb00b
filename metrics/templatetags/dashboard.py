"""Formatting for the dashboard templates: rates, money, durations, links that keep filters."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

from metrics import producer_units, units

register = template.Library()


@register.filter
def percent(rate, digits: int = 1) -> str:
    """0.125 → "12.5%"; None → "—"."""
    if rate is None:
        return "—"
    return f"{float(rate) * 100:.{digits}f}%"


@register.filter
def usd(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"${Decimal(str(value)):,.{digits}f}"


@register.filter
def seconds(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}s"


@register.filter
def signed(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:+,.{digits}f}"


@register.simple_tag(takes_context=True)
def export_url(context) -> str:
    """The current page's URL with ``export=csv``: same filters, same table."""
    request = context["request"]
    params = request.GET.copy()
    params["export"] = "csv"
    params.pop("page", None)
    return f"{request.path}?{params.urlencode()}"


@register.simple_tag(takes_context=True)
def export_link(context) -> str:
    return format_html('<a class="export" href="{}">Export CSV</a>', export_url(context))


@register.filter
def budget_value(value, metric: str) -> str:
    """A budget check's value in the budget's unit: 0.05 of an error rate → "5.0%"."""
    return units.budget_value(value, metric)


@register.filter
def budget_label(metric: str) -> str:
    return units.budget_label(metric)


@register.filter
def budget_rule(budget) -> str:
    """A budget (or a row with metric and threshold) as its target: "at most 5.0%"."""
    metric = budget["metric"] if isinstance(budget, dict) else budget.metric
    threshold = budget["threshold"] if isinstance(budget, dict) else budget.threshold
    return units.budget_rule(metric, threshold)


@register.filter
def regression_value(value, metric: str) -> str:
    return units.regression_value(value, metric)


@register.filter
def humanize(key) -> str:
    return units.humanize(key)


@register.filter
def megabytes(size_bytes) -> str:
    """Peak memory in bytes as "312.4 MB"; None (not reported) as "—"."""
    return units.with_unit(producer_units.megabytes(size_bytes), units.MEGABYTES)


@register.filter
def tokens(value) -> str:
    return units.with_unit(value, units.TOKENS)


@register.filter
def in_unit(value, unit: str) -> str:
    """A value in its unit ("$", "s", "%", "tokens"; "" for a plain count)."""
    if unit == "":
        return "—" if value is None else f"{value:,}"
    return units.with_unit(value, unit)


@register.filter
def signed_usd(value, digits: int = 4) -> str:
    """A change in money: +$0.0012, -$0.0400; None → "—"."""
    if value is None:
        return "—"
    number = Decimal(str(value))
    return f"{'-' if number < 0 else '+'}${abs(number):,.{digits}f}"
