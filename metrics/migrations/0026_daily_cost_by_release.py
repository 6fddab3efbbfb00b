"""The daily cost rollup gains the release, so the costs page filtered by a release reads the
rollup instead of summing every cost line of the period.

Each analyzed session's rollup key gains its release (``rollup_release``; only sessions
with a release are written), then the daily cost rollup is recomputed from the analyzed
sessions' cost lines under the keys, as ``metrics.analysis.rollups.rebuild_all`` does.
"""

from django.db import migrations, models
from django.db.models import Count, Sum

COST_SUMS = (
    "calls", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "cache_write_tokens", "cache_write_1h_tokens", "total_tokens", "cost_usd",
    "unpriced_calls",
)
KEY = ("project_id", "day", "workflow", "release", "provider", "model")


def fill(apps, schema_editor):
    Session = apps.get_model("metrics", "Session")
    CostLine = apps.get_model("metrics", "CostLine")
    DailyCost = apps.get_model("metrics", "DailyCost")
    Session.objects.filter(rollup_day__isnull=False).exclude(release="").update(
        rollup_release=models.F("release"))
    DailyCost.objects.all().delete()
    grouped = (
        CostLine.objects.filter(session__analyzed_at__isnull=False)
        .values("session__project_id", "day", "session__rollup_workflow",
                "session__rollup_release", "provider", "model")
        .annotate(rollup_sessions=Count("session_id", distinct=True),
                  **{f"rollup_{name}": Sum(name) for name in COST_SUMS})
        .order_by()
    )
    # INSERT ... SELECT: the lines never travel through Python. The SELECT's columns come
    # in values() order, then annotate() order.
    select_sql, params = grouped.query.sql_with_params()
    columns = ", ".join((*KEY, "sessions", *COST_SUMS))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {DailyCost._meta.db_table} ({columns}) {select_sql}",
                       params)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0025_page_read_covering_indexes")]

    operations = [
        migrations.RemoveConstraint(model_name="dailycost", name="dailycost_unique_key"),
        migrations.AddField(
            model_name="dailycost", name="release",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddField(
            model_name="session", name="rollup_release",
            field=models.CharField(blank=True, editable=False, max_length=128),
        ),
        migrations.AddConstraint(
            model_name="dailycost",
            constraint=models.UniqueConstraint(
                fields=("project", "day", "workflow", "release", "provider", "model"),
                name="dailycost_unique_key"),
        ),
        # Last: PostgreSQL refuses to alter a table with foreign-key checks pending from
        # rows written earlier in the same transaction.
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
