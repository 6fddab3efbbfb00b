"""The episode's link to its latest completed run loses its database constraint.

Its check locked the linked session row (FOR KEY SHARE) while the episode was refreshed;
an ingest merging into that session holds the row and stores its own run against the
episode, so the two could deadlock. Django still clears the link when the session is
deleted (SET_NULL), and every deletion refreshes the episode (metrics.episode_runs).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("metrics", "0028_episode_latest_runs")]

    operations = [
        migrations.AlterField(
            model_name="episode", name="latest_completed_session",
            field=models.ForeignKey(blank=True, db_constraint=False, editable=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="metrics.session"),
        ),
    ]
