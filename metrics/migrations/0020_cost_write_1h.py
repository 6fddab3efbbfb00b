"""1-hour cache writes on the cost lines and the cost rollups, so a what-if priced from the
rollups prices them apart as the ledger does.

Lines are filled from the API calls still stored; a session whose calls had already aged
out keeps 0 (its 1-hour writes count as 5-minute writes in a what-if). The rollups are
then summed from the lines, as ``rebuild_all`` would.
"""

from datetime import UTC

from django.db import migrations, models
from django.db.models import F, Func, OuterRef, Subquery
from django.db.models.functions import Coalesce, TruncDate


def _sum_of(rows, field: str):
    """SUM(field) of ``rows`` as a correlated subquery (0 for none): a Func, not an
    aggregate, so the subquery has no GROUP BY."""
    total = Func(F(field), function="SUM", output_field=models.BigIntegerField())
    return Coalesce(Subquery(rows.order_by().annotate(total=total).values("total")[:1]), 0)


def fill_lines(apps, schema_editor):
    ApiCall = apps.get_model("metrics", "ApiCall")
    CostLine = apps.get_model("metrics", "CostLine")
    with_writes = ApiCall.objects.filter(cache_write_1h_tokens__gt=0)
    calls = with_writes.annotate(day=TruncDate("at", tzinfo=UTC)).filter(
        session_id=OuterRef("session_id"), day=OuterRef("day"),
        provider=OuterRef("provider"), model=OuterRef("model"),
    )
    CostLine.objects.filter(session_id__in=with_writes.values("session_id")).update(
        cache_write_1h_tokens=_sum_of(calls, "cache_write_1h_tokens"))


def fill_rollups(apps, schema_editor):
    CostLine = apps.get_model("metrics", "CostLine")
    lines = CostLine.objects.filter(session__analyzed_at__isnull=False,
                                    cache_write_1h_tokens__gt=0)
    same = {"session__project_id": OuterRef("project_id"),
            "session__rollup_workflow": OuterRef("workflow"),
            "provider": OuterRef("provider"), "model": OuterRef("model")}
    for model, key in (("DailyCost", {"day": OuterRef("day")}),
                       ("EpisodeCost", {"session__rollup_episode": OuterRef("episode")})):
        rows = apps.get_model("metrics", model).objects.all()
        rows.update(cache_write_1h_tokens=_sum_of(lines.filter(**same, **key),
                                                  "cache_write_1h_tokens"))


class Migration(migrations.Migration):
    dependencies = [("metrics", "0019_page_read_indexes")]

    operations = [
        migrations.AddField(
            model_name="costline", name="cache_write_1h_tokens",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="dailycost", name="cache_write_1h_tokens",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="episodecost", name="cache_write_1h_tokens",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(fill_lines, migrations.RunPython.noop),
        migrations.RunPython(fill_rollups, migrations.RunPython.noop),
    ]
