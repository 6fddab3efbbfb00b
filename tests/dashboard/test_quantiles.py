"""Percentiles: the same nearest-rank figures on SQLite and PostgreSQL."""

import math
import random

import pytest
from django.db.models import Count, FloatField, Q

from metrics.dashboard.quantiles import PercentileDisc, median, median_of, nearest_rank
from metrics.models import Session
from tests.factories import session_payload

pytestmark = pytest.mark.django_db


def by_definition(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_the_median_of_a_column_is_the_nearest_rank_one(api, n):
    rng = random.Random(n)
    durations = [round(rng.uniform(1, 100), 3) for _ in range(n)]
    for i, duration in enumerate(durations):
        api.post("/sessions", session_payload(f"s{i}", duration_s=duration))
    api.post("/sessions", session_payload("live", duration_s=None, status="running"))

    assert median_of(Session.objects.all(), "duration_s") == by_definition(durations, 0.5)
    assert median_of(Session.objects.none(), "duration_s") is None


@pytest.mark.postgres
def test_percentile_disc_folds_into_other_aggregates(api):
    for i, duration in enumerate((5.0, 1.0, 3.0, 4.0)):
        api.post("/sessions", session_payload(f"s{i}", duration_s=duration,
                                              status="failed" if i == 0 else "completed"))

    row = Session.objects.aggregate(
        runs=Count("pk"),
        median=PercentileDisc("duration_s", 0.5, filter=Q(status="completed"),
                              output_field=FloatField()),
    )

    assert row == {"runs": 4, "median": 3.0}


def test_nearest_rank_of_a_short_list():
    values = [random.Random(3).uniform(0, 1) for _ in range(101)]
    for q in (0.05, 0.25, 0.5, 0.95):
        assert nearest_rank(values, q) == by_definition(values, q)
    assert nearest_rank([], 0.5) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.0  # nearest rank: the lower middle
