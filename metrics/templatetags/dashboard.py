"""Formatting for the dashboard templates: rates, money, durations, links that keep filters."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

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
