"""Migration 0027 fills each session's count of unpriced calls and of failed budget checks."""

from datetime import UTC, date, datetime

import pytest

from tests.retention.migrating import migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("metrics", "0026_daily_cost_by_release")
AFTER = ("metrics", "0027_session_unpriced_and_budget_failure_counts")
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_counts_come_from_the_cost_lines_and_the_failed_checks(back_to_latest):
    apps = migrate(BEFORE)
    project = apps.get_model("metrics", "Project").objects.create(name="P", slug="p")
    Session = apps.get_model("metrics", "Session")
    CostLine = apps.get_model("metrics", "CostLine")
    Budget = apps.get_model("metrics", "Budget")
    BudgetCheck = apps.get_model("metrics", "BudgetCheck")
    sessions = {name: Session.objects.create(project=project, external_id=name, started_at=T0,
                                             merged_at=T0)
                for name in ("unpriced", "over", "clean")}
    for model, unpriced in [("a", 3), ("b", 0), ("c", 4)]:
        CostLine.objects.create(session=sessions["unpriced"], day=date(2026, 11, 2),
                                model=model, calls=5, unpriced_calls=unpriced)
    CostLine.objects.create(session=sessions["clean"], day=date(2026, 11, 2), model="a",
                            calls=5)
    budgets = [Budget.objects.create(project=project, name=f"b{n}", metric="duration_s",
                                     threshold=10) for n in range(3)]
    for budget, passed in zip(budgets, [False, False, True], strict=True):
        BudgetCheck.objects.create(session=sessions["over"], budget=budget, value=20,
                                   passed=passed)
    BudgetCheck.objects.create(session=sessions["clean"], budget=budgets[0], value=5,
                               passed=True)

    Session = migrate(AFTER).get_model("metrics", "Session")

    counts = {s.external_id: (s.unpriced_calls_count, s.budget_failures_count)
              for s in Session.objects.filter(project_id=project.pk)}
    assert counts == {"unpriced": (7, 0), "over": (0, 2), "clean": (0, 0)}
