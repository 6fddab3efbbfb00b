"""Pricing model calls from the ModelPrice table, in the database.

Token convention (the SDK's, and OpenAI's): ``prompt_tokens`` counts every input token,
``cached_tokens`` and ``cache_write_tokens`` are the parts of it read from and written to
the provider's prompt cache. Each kind has its own price; a missing cached-input or
cache-write price falls back to the plain input price.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Case,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from metrics.models import COST_FIELD, ApiCall, ModelPrice, Project

PER_TOKEN = Decimal(1_000_000)
_MONEY = DecimalField(**COST_FIELD)
_PRICE = DecimalField(max_digits=12, decimal_places=6)


def price_calls(calls: QuerySet[ApiCall]) -> None:
    """Price every call not priced by its client, from the price valid at the call's time.

    A call whose model has no price row valid then is marked unpriced with a null cost,
    never a silent zero.
    """
    server_priced = calls.exclude(cost_source=ApiCall.CostSource.CLIENT)
    valid = ModelPrice.objects.filter(
        provider=OuterRef("provider"), model=OuterRef("model"), valid_from__lte=OuterRef("at")
    ).order_by("-valid_from")

    def price(field: str) -> Subquery:
        return Subquery(valid.values(field)[:1], output_field=_PRICE)

    uncached_input = Greatest(
        F("prompt_tokens") - F("cached_tokens") - F("cache_write_tokens"), Value(0)
    )
    cost = ExpressionWrapper(
        (
            uncached_input * price("input_per_mtok")
            + F("completion_tokens") * price("output_per_mtok")
            + F("cached_tokens") * Coalesce(price("cached_input_per_mtok"), price("input_per_mtok"))
            + F("cache_write_tokens")
            * Coalesce(price("cache_write_per_mtok"), price("input_per_mtok"))
        )
        / Value(PER_TOKEN),
        output_field=_MONEY,
    )
    server_priced.update(cost_usd=cost)
    server_priced.update(
        cost_source=Case(
            When(cost_usd__isnull=True, then=Value(ApiCall.CostSource.UNPRICED)),
            default=Value(ApiCall.CostSource.PRICE_TABLE),
        )
    )


def sessions_to_reprice(*, provider: str, model: str, since) -> QuerySet:
    """Sessions with server-priced calls of this model at or after ``since``."""
    return (
        ApiCall.objects.filter(provider=provider, model=model, at__gte=since)
        .exclude(cost_source=ApiCall.CostSource.CLIENT)
        .values_list("session_id", flat=True)
        .distinct()
    )


@dataclass(frozen=True)
class WhatIf:
    episode: str
    actual_cost_usd: Decimal
    what_if_cost_usd: Decimal
    calls: int


def what_if_cost(
    *, project: Project, episodes: list[str], provider: str, model: str
) -> list[WhatIf]:
    """Each episode's calls priced as if they had all gone to ``provider/model``.

    Uses that model's price valid now; raises ModelPrice.DoesNotExist if it has none.
    """
    price = (
        ModelPrice.objects.filter(provider=provider, model=model, valid_from__lte=timezone.now())
        .order_by("-valid_from")
        .first()
    )
    if price is None:
        raise ModelPrice.DoesNotExist(f"no price for {provider}/{model}")
    totals = (
        ApiCall.objects.filter(session__project=project, session__episode__code__in=episodes)
        .values("session__episode__code")
        .annotate(
            calls=Sum(Value(1)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cached=Sum("cached_tokens"),
            cache_write=Sum("cache_write_tokens"),
            actual=Sum("cost_usd"),
        )
        .order_by("session__episode__code")
    )
    cached_price = price.cached_input_per_mtok or price.input_per_mtok
    write_price = price.cache_write_per_mtok or price.input_per_mtok
    results = []
    for row in totals:
        uncached = max(row["prompt"] - row["cached"] - row["cache_write"], 0)
        cost = (
            uncached * price.input_per_mtok
            + row["completion"] * price.output_per_mtok
            + row["cached"] * cached_price
            + row["cache_write"] * write_price
        ) / PER_TOKEN
        results.append(
            WhatIf(
                episode=row["session__episode__code"],
                actual_cost_usd=Decimal(row["actual"] or 0),
                what_if_cost_usd=cost.quantize(Decimal("0.00000001")),
                calls=row["calls"],
            )
        )
    return results
