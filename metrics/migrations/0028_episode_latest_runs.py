"""The episode keeps the start of its latest run and its latest completed run, so the
episodes table ranks a period that ends now by the takes without reading every run
(metrics.episode_runs keeps them from here on).

Filled from each episode's runs; an episode without runs keeps nulls.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Exists, OuterRef, Subquery


def fill(apps, schema_editor):
    Episode = apps.get_model("metrics", "Episode")
    Session = apps.get_model("metrics", "Session")
    runs = Session.objects.filter(episode_id=OuterRef("pk")).order_by("-started_at", "-pk")
    Episode.objects.filter(Exists(runs)).update(
        latest_run_at=Subquery(runs.values("started_at")[:1]),
        latest_completed_session=Subquery(runs.filter(status="completed").values("pk")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [("metrics", "0027_session_unpriced_and_budget_failure_counts")]

    operations = [
        migrations.AddField(
            model_name="episode", name="latest_completed_session",
            field=models.ForeignKey(blank=True, editable=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="metrics.session"),
        ),
        migrations.AddField(
            model_name="episode", name="latest_run_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
