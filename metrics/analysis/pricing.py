"""Pricing model calls from the ModelPrice table, in the database.

The token ledger (DESIGN.md): ``prompt_tokens`` counts every input token;
``cached_tokens`` and ``cache_write_tokens`` are the parts of it read from and written to
the provider's prompt cache, and ``cache_write_1h_tokens`` the part of the writes that went
to a 1-hour cache. Each kind has its own price; a missing cached-input or 5-minute write
price falls back to the plain input price, a missing 1-hour write price to the 5-minute one.
A dated snapshot of a model ("gpt-4o-2024-08-06") with no price row of its own takes the
price of its undated name; a row for the snapshot itself wins.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from metrics.models import COST_FIELD, ApiCall, EpisodeCost, ModelPrice, Project, Session

# Prices are per million tokens. Multiplied, not divided: SQLite divides an integer by an
# integer as integers, so a whole-dollar price (stored as 10) made 500 tokens cost $0.
PER_MILLION = Decimal("0.000001")
_MONEY = DecimalField(**COST_FIELD)
_PRICE = DecimalField(max_digits=12, decimal_places=6)


def price_calls(calls: QuerySet[ApiCall]) -> None:
    """Price every call not priced by its client, from the price valid at the call's time.

    A call whose model has no price row valid then is marked unpriced with a null cost,
    never a silent zero.
    """
    server_priced = calls.exclude(cost_source=ApiCall.CostSource.CLIENT)
    server_priced.update(cost_usd=_cost_at_call_time(provider=OuterRef("provider"),
                                                     model=OuterRef("model")))
    # Providers answer with a dated snapshot of the model asked for ("gpt-4o" answers as
    # "gpt-4o-2024-08-06"): without a row of its own, it takes its undated model's price.
    unpriced = server_priced.filter(cost_usd__isnull=True)
    for model in unpriced.values_list("model", flat=True).distinct().order_by():
        if (undated := undated_model(model)) != model:
            unpriced.filter(model=model).update(
                cost_usd=_cost_at_call_time(provider=OuterRef("provider"), model=Value(undated)))
    server_priced.update(
        cost_source=Case(
            When(cost_usd__isnull=True, then=Value(ApiCall.CostSource.UNPRICED)),
            default=Value(ApiCall.CostSource.PRICE_TABLE),
        )
    )


def _cost_at_call_time(*, provider, model) -> ExpressionWrapper:
    """A call's cost (SQL) from ``provider/model``'s price valid at the call's time; null
    when that model had no price then."""
    valid = ModelPrice.objects.filter(
        provider=provider, model=model, valid_from__lte=OuterRef("at")
    ).order_by("-valid_from")

    def price(field: str) -> Subquery:
        return Subquery(valid.values(field)[:1], output_field=_PRICE)

    return ExpressionWrapper(
        ledger_cost(
            tokens=lambda field: F(field),
            prices=price,
            at_least_zero=lambda expr: Greatest(expr, Value(0)),
            coalesce=Coalesce,
        ),
        output_field=_MONEY,
    )


_DATE_SUFFIX = r"-(\d{4}-\d{2}-\d{2}|\d{8})$"


def undated_model(model: str) -> str:
    """"gpt-4o-2024-08-06" and "claude-sonnet-4-5-20250929" without their date suffix."""
    return re.sub(_DATE_SUFFIX, "", model)


def sessions_to_reprice(*, provider: str, model: str, since) -> QuerySet:
    """Sessions with server-priced calls of this model, or of its dated snapshots, at or
    after ``since``."""
    same_model = Q(model=model) | Q(model__regex=f"^{re.escape(model)}{_DATE_SUFFIX}")
    return (
        ApiCall.objects.filter(same_model, provider=provider, at__gte=since)
        .exclude(cost_source=ApiCall.CostSource.CLIENT)
        .values_list("session_id", flat=True)
        .distinct()
    )


def ledger_cost(*, tokens, prices, at_least_zero, coalesce):
    """The cost of one ledger: token counts by field times the price of each kind.

    The one formula for both SQL expressions and Python numbers: ``tokens(field)`` and
    ``prices(field)`` give the operands, ``at_least_zero`` and ``coalesce`` the two
    functions the formula needs, in the caller's arithmetic.
    """
    writes_1h = tokens("cache_write_1h_tokens")
    writes_5m = at_least_zero(tokens("cache_write_tokens") - writes_1h)
    uncached_input = at_least_zero(
        tokens("prompt_tokens") - tokens("cached_tokens") - tokens("cache_write_tokens")
    )
    input_price = prices("input_per_mtok")
    write_price = coalesce(prices("cache_write_per_mtok"), input_price)
    return (
        uncached_input * input_price
        + tokens("completion_tokens") * prices("output_per_mtok")
        + tokens("cached_tokens") * coalesce(prices("cached_input_per_mtok"), input_price)
        + writes_5m * write_price
        + writes_1h * coalesce(prices("cache_write_1h_per_mtok"), write_price)
    ) * PER_MILLION


def _first_not_none(*values):
    return next((value for value in values if value is not None), None)


@dataclass(frozen=True)
class WhatIf:
    episode: str
    actual_cost_usd: Decimal
    what_if_cost_usd: Decimal
    calls: int
    # Calls made before the chosen model had a price (only when priced at each call's
    # time): not in ``what_if_cost_usd``.
    unpriced_calls: int = 0


_WHAT_IF_SUMS = (
    "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
    "cache_write_1h_tokens",
)
_CENTS_OF_CENTS = Decimal("0.00000001")


def what_if_cost(
    *, project: Project, episodes: list[str], provider: str, model: str,
    at_call_time: bool = False,
) -> list[WhatIf]:
    """Each episode's calls priced as if they had all gone to ``provider/model``.

    With today's price of that model, from the episode cost rollup (which keeps the
    figures of sessions whose calls aged out); or with ``at_call_time`` the price it had
    when each call was made, from the calls still stored (``aged_out_sessions`` counts
    the sessions that leaves out). Raises ModelPrice.DoesNotExist if the model has no
    price now.
    """
    price = (
        ModelPrice.objects.filter(provider=provider, model=model, valid_from__lte=timezone.now())
        .order_by("-valid_from")
        .first()
    )
    if price is None:
        raise ModelPrice.DoesNotExist(f"no price for {provider}/{model}")
    if at_call_time:
        calls = ApiCall.objects.filter(session__project=project,
                                       session__episode__code__in=episodes)
        return _what_if_at_call_time(calls, provider=provider, model=model)
    return [_priced_today(row, price) for row in _episode_usage(project, episodes)]


def _episode_usage(project: Project, episodes: list[str]) -> QuerySet:
    """Each episode's calls, token counts and cost, summed over its rollup rows."""
    return (
        EpisodeCost.objects.filter(project=project, episode__in=episodes)
        .values("episode")
        .annotate(calls_n=Sum("calls"), actual=Sum("cost_usd"),
                  **{f"sum_{field}": Sum(field) for field in _WHAT_IF_SUMS})
        .filter(calls_n__gt=0)
        .order_by("episode")
    )


def _priced_today(row: dict, price: ModelPrice) -> WhatIf:
    cost = ledger_cost(
        tokens=lambda field: row[f"sum_{field}"],
        prices=lambda field: getattr(price, field),
        at_least_zero=lambda value: max(value, 0),
        coalesce=_first_not_none,
    )
    return WhatIf(
        episode=row["episode"],
        actual_cost_usd=Decimal(row["actual"] or 0),
        what_if_cost_usd=cost.quantize(_CENTS_OF_CENTS),
        calls=row["calls_n"],
    )


def aged_out_sessions(project: Project, episodes: list[str]) -> int:
    """Sessions of these episodes whose raw calls retention removed."""
    return Session.objects.filter(
        project=project, episode__code__in=episodes, detail_pruned_at__isnull=False,
        api_calls_count__gt=0,
    ).count()


def _what_if_at_call_time(calls: QuerySet[ApiCall], *, provider: str, model: str
                          ) -> list[WhatIf]:
    totals = (
        calls.annotate(priced_as=_cost_at_call_time(provider=Value(provider),
                                                    model=Value(model)))
        .values("session__episode__code")
        .annotate(
            n=Count("pk"), actual=Sum("cost_usd"), what_if=Sum("priced_as"),
            unpriced=Count("pk", filter=Q(priced_as__isnull=True)),
        )
        .order_by("session__episode__code")
    )
    return [
        WhatIf(
            episode=row["session__episode__code"],
            actual_cost_usd=Decimal(row["actual"] or 0),
            what_if_cost_usd=Decimal(row["what_if"] or 0).quantize(_CENTS_OF_CENTS),
            calls=row["n"], unpriced_calls=row["unpriced"],
        )
        for row in totals
    ]
