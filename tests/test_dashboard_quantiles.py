"""Percentiles per group from the database, the same on SQLite and PostgreSQL."""

import math
import random

import pytest
from django.db.models import Max, Value
from django.db.models.functions import StrIndex, Substr

from metrics.models import OperationStat, Session
from metrics.quantiles import grouped_quantiles, median
from tests.factories import session_payload

pytestmark = pytest.mark.django_db


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_each_group_gets_the_nearest_rank_percentiles(api):
    api.post("/sessions", session_payload("s1"))
    session = Session.objects.get()
    rng = random.Random(7)
    groups = {"short": [rng.uniform(0, 1) for _ in range(37)],
              "long": [rng.uniform(5, 50) for _ in range(101)], "single": [3.0]}
    OperationStat.objects.bulk_create(
        OperationStat(session=session, name=f"{group}-{i}", occurrences=1,
                      total_duration_s=value, self_time_s=value, share=0)
        for group, values in groups.items() for i, value in enumerate(values)
    )
    group = Substr("name", 1, StrIndex("name", Value("-")) - 1)
    result = grouped_quantiles(OperationStat.objects.all(), group=group,
                               value="self_time_s", quantiles=(0.05, 0.5, 0.95))

    for name, values in groups.items():
        assert result[name] == {"n": len(values), **{
            q: pytest.approx(nearest_rank(values, q)) for q in (0.05, 0.5, 0.95)}}


def test_nulls_are_left_out_and_an_empty_set_gives_nothing(api):
    api.post("/sessions", session_payload("s1", duration_s=None, status="running"))
    api.post("/sessions", session_payload("s2", duration_s=12.0))

    result = grouped_quantiles(Session.objects.all(), group="workflow", value="duration_s",
                               quantiles=(0.5,))

    assert result == {"script_generation": {0.5: 12.0, "n": 1}}
    assert grouped_quantiles(Session.objects.none(), group="workflow", value="duration_s",
                             quantiles=(0.5,)) == {}


def test_extra_aggregates_come_back_per_group(api):
    for n, duration in enumerate((10.0, 20.0, 30.0)):
        api.post("/sessions", session_payload(f"s{n}", duration_s=duration,
                                              release=f"r{n % 2}"))

    result = grouped_quantiles(Session.objects.all(), group="release", value="duration_s",
                               quantiles=(0.5,), extra={"longest": Max("duration_s")})

    assert result == {"r0": {0.5: 10.0, "n": 2, "longest": 30.0},
                      "r1": {0.5: 20.0, "n": 1, "longest": 20.0}}


def test_median_of_a_short_list():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.0  # nearest rank: the lower middle
