"""Percentiles that work on SQLite and PostgreSQL alike.

PostgreSQL has ordered-set aggregates (``percentile_disc``) that fold a median into the same
pass as other aggregates; SQLite has none, so there the median takes a count and an offset.
Short lists already fetched (a bounded sample, a few episodes' occurrences) are ranked
in Python. Every percentile here is the nearest-rank one: the value at rank ceil(q × n).
"""

import math
from collections.abc import Sequence

from django.db import connection
from django.db.models import Aggregate, FloatField, QuerySet

QUARTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class PercentileDisc(Aggregate):
    """PostgreSQL's ``percentile_disc(q) WITHIN GROUP (ORDER BY x)``. PostgreSQL only."""

    function = "percentile_disc"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, percentile: float, **extra):
        super().__init__(expression, percentile=float(percentile), **extra)


def median_of(qs: QuerySet, value: str) -> float | None:
    """Nearest-rank median of a column: one aggregate on PostgreSQL, count and offset
    (two small queries) elsewhere."""
    present = qs.filter(**{f"{value}__isnull": False}).order_by()
    if connection.vendor == "postgresql":
        return present.aggregate(m=PercentileDisc(value, 0.5, output_field=FloatField()))["m"]
    n = present.count()
    if not n:
        return None
    return present.order_by(value).values_list(value, flat=True)[(n + 1) // 2 - 1]


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile of a short, already fetched list (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def median(values: Sequence[float]) -> float | None:
    """The nearest-rank median of a short, already fetched list."""
    return nearest_rank(values, 0.5)
