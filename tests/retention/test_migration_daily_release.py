"""Migration 0026 splits the daily cost rollup by release, from the sessions' cost lines."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.retention.migrating import migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("metrics", "0025_page_read_covering_indexes")
AFTER = ("metrics", "0026_daily_cost_by_release")
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY = date(2026, 11, 2)


def test_the_rollup_is_split_by_each_analyzed_sessions_release(back_to_latest):
    apps = migrate(BEFORE)
    project = apps.get_model("metrics", "Project").objects.create(name="P", slug="p")
    Session = apps.get_model("metrics", "Session")
    CostLine = apps.get_model("metrics", "CostLine")
    DailyCost = apps.get_model("metrics", "DailyCost")
    for name, release, cost, analyzed in [("a", "1.4", "0.25", T0), ("b", "1.4", "0.5", T0),
                                          ("c", "1.5", "2", T0), ("d", "", "0.125", T0),
                                          ("waiting", "1.5", "9", None)]:
        session = Session.objects.create(
            project=project, external_id=name, started_at=T0, merged_at=T0, release=release,
            workflow="script", rollup_workflow="script", rollup_day=analyzed and DAY,
            analyzed_at=analyzed)
        CostLine.objects.create(session=session, day=DAY, provider="openai", model="gpt-4o",
                                calls=2, total_tokens=100, cost_usd=Decimal(cost))
    # the rollup as analysis kept it, one row for the day, workflow and model
    DailyCost.objects.create(project=project, day=DAY, workflow="script", provider="openai",
                             model="gpt-4o", sessions=4, calls=8, total_tokens=400,
                             cost_usd=Decimal("2.875"))

    apps = migrate(AFTER)
    DailyCost = apps.get_model("metrics", "DailyCost")
    Session = apps.get_model("metrics", "Session")

    rows = DailyCost.objects.filter(project_id=project.pk).order_by("release").values_list(
        "release", "workflow", "sessions", "calls", "total_tokens", "cost_usd")
    assert list(rows) == [("", "script", 1, 2, 100, Decimal("0.125")),
                          ("1.4", "script", 2, 4, 200, Decimal("0.75")),
                          ("1.5", "script", 1, 2, 100, Decimal("2"))]
    keys = dict(Session.objects.filter(project_id=project.pk).values_list(
        "external_id", "rollup_release"))
    assert keys == {"a": "1.4", "b": "1.4", "c": "1.5", "d": "", "waiting": ""}
