"""The session's cache-read and cache-write token sums, kept on the session so that ingest
checks a merge against the per-session caps without summing the stored calls.

Filled from the API calls, or, for a session whose calls aged out, from its cost lines
(which the prune keeps and which sum the same calls); a session with no cache tokens keeps
its default 0 and is not rewritten.
"""

from django.db import migrations, models
from django.db.models import Exists, F, Func, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

SUMS = ("cached_tokens", "cache_write_tokens")


def _sum_of(rows, field: str):
    """SUM(field) of ``rows`` as a correlated subquery (0 for none)."""
    total = Func(F(field), function="SUM", output_field=models.BigIntegerField())
    return Coalesce(Subquery(rows.order_by().annotate(total=total).values("total")[:1]), 0)


def fill(apps, schema_editor):
    Session = apps.get_model("metrics", "Session")
    ApiCall = apps.get_model("metrics", "ApiCall")
    CostLine = apps.get_model("metrics", "CostLine")
    # Only the sessions whose sums are not 0 are written: rewriting every session would
    # leave a dead version of each row and of its index entries behind.
    with_sums = Q(cached_tokens__gt=0) | Q(cache_write_tokens__gt=0)
    calls = ApiCall.objects.filter(session_id=OuterRef("pk"))
    lines = CostLine.objects.filter(session_id=OuterRef("pk"))
    Session.objects.filter(detail_pruned_at__isnull=True).filter(
        Exists(calls.filter(with_sums))).update(**{name: _sum_of(calls, name) for name in SUMS})
    Session.objects.filter(detail_pruned_at__isnull=False).filter(
        Exists(lines.filter(with_sums))).update(**{name: _sum_of(lines, name) for name in SUMS})


class Migration(migrations.Migration):
    dependencies = [("metrics", "0022_session_fk_no_separate_index")]

    operations = [
        migrations.AddField(
            model_name="session", name="cached_tokens",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="session", name="cache_write_tokens",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
