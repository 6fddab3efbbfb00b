"""The session keeps its count of unpriced calls and of failed budget checks, and the period
index carries them: the overview sums a period's figures in one pass over its sessions,
where it made three (the sessions, their cost lines, their failed checks).

Filled from the cost lines and the failed checks; a session with neither keeps its default
0 and is not rewritten. The two partial indexes those two passes read go.
"""

from django.db import migrations, models
from django.db.models import Exists, F, Func, OuterRef, Subquery
from django.db.models.functions import Coalesce


def _correlated(rows, value):
    return Coalesce(Subquery(rows.order_by().annotate(n=value).values("n")[:1]), 0)


def fill(apps, schema_editor):
    Session = apps.get_model("metrics", "Session")
    CostLine = apps.get_model("metrics", "CostLine")
    BudgetCheck = apps.get_model("metrics", "BudgetCheck")
    unpriced = CostLine.objects.filter(session_id=OuterRef("pk"), unpriced_calls__gt=0)
    Session.objects.filter(Exists(unpriced)).update(unpriced_calls_count=_correlated(
        unpriced, Func(F("unpriced_calls"), function="SUM",
                       output_field=models.IntegerField())))
    failed = BudgetCheck.objects.filter(session_id=OuterRef("pk"), passed=False)
    Session.objects.filter(Exists(failed)).update(budget_failures_count=_correlated(
        failed, Func(F("pk"), function="COUNT", output_field=models.IntegerField())))


class Migration(migrations.Migration):
    dependencies = [("metrics", "0026_daily_cost_by_release")]

    operations = [
        migrations.RemoveIndex(model_name="budgetcheck", name="budgetcheck_failed_session"),
        migrations.RemoveIndex(model_name="costline", name="costline_unpriced"),
        migrations.RemoveIndex(model_name="session", name="session_project_start"),
        migrations.AddField(
            model_name="session", name="budget_failures_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="session", name="unpriced_calls_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(
                fields=["project", "-started_at", "-id"],
                include=("episode", "status", "duration_s", "cost_usd", "cache_hits",
                         "cache_misses", "api_calls_count", "api_errors_count",
                         "total_tokens", "unpriced_calls_count", "budget_failures_count",
                         "workflow", "environment", "release", "tags"),
                name="session_project_start"),
        ),
        # Last: PostgreSQL refuses to alter a table with foreign-key checks pending from
        # rows written earlier in the same transaction.
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
