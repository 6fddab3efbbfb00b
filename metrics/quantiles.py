"""Percentiles per group, computed by the database on SQLite and PostgreSQL alike.

PostgreSQL has ``percentile_cont`` but SQLite has no percentile aggregate, so each group's
rows are numbered in value order with window functions and only the rows standing at the
wanted ranks come back: a handful of rows per group, whatever the group's size. The
percentile is the nearest-rank one (the value at rank ceil(q × n)).
"""

import math
from collections import defaultdict
from collections.abc import Sequence

from django.db.models import Aggregate, Count, F, Q, QuerySet, Window
from django.db.models.expressions import Expression
from django.db.models.functions import RowNumber

QUARTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def grouped_quantiles(
    qs: QuerySet, *, group: str | Expression, value: str, quantiles: Sequence[float],
    extra: dict[str, Aggregate] | None = None,
) -> dict[object, dict]:
    """``{group value: {q: value at that percentile, …, "n": rows}}`` over ``qs``.

    Rows whose value is null are left out. ``group`` is a field path or an expression;
    ``extra`` aggregates (e.g. ``{"last": Max("started_at")}``) are computed per group in
    the same query and returned under their names.
    """
    group_expr = F(group) if isinstance(group, str) else group
    windows = {
        f"_x_{name}": Window(aggregate, partition_by=[group_expr])
        for name, aggregate in (extra or {}).items()
    }
    numbered = (
        qs.filter(**{f"{value}__isnull": False})
        .annotate(
            _group=group_expr,
            _rank=Window(RowNumber(), partition_by=[group_expr], order_by=[F(value).asc()]),
            _n=Window(Count("pk"), partition_by=[group_expr]),
            **windows,
        )
        .order_by()
    )
    wanted = Q()
    for q in quantiles:
        wanted |= Q(_rank=_rank_of(q))
    rows = numbered.filter(wanted).values_list("_group", "_rank", "_n", value, *windows)
    result: dict[object, dict] = defaultdict(dict)
    for group_value, rank, n, measured, *extras in rows:
        entry = result[group_value]
        entry["n"] = n
        entry.update(zip((extra or {}), extras, strict=True))
        for q in quantiles:
            if rank == _nearest_rank(q, n):
                entry[q] = measured
    return dict(result)


def _rank_of(q: float):
    # ceil(q × n) written with integer arithmetic both databases share:
    # (q×10000 × n + 9999) / 10000, an integer division on integer columns.
    scaled = round(q * 10_000)
    return (F("_n") * scaled + 9_999) / 10_000


def _nearest_rank(q: float, n: int) -> int:
    scaled = round(q * 10_000)
    return max(1, (n * scaled + 9_999) // 10_000)


def median(values: Sequence[float]) -> float | None:
    """The nearest-rank median of a short, already fetched list."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) / 2)) - 1]
