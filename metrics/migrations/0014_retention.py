# Retention (issue 17): per-project periods, pinned sessions, when the detail aged out,
# and the cost per operation name kept beside the other per-name figures.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0013_alerts'),
    ]

    operations = [
        migrations.AddField(
            model_name='operationstat',
            name='cost_usd',
            field=models.DecimalField(blank=True, decimal_places=8, max_digits=28, null=True),
        ),
        migrations.AddField(
            model_name='project',
            name='retention_days',
            field=models.PositiveIntegerField(blank=True, help_text="Days raw operations and API calls are kept; blank: the server's RETENTION_DAYS; 0: kept forever. Session figures are always kept.", null=True),
        ),
        migrations.AddField(
            model_name='session',
            name='detail_pruned_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='session',
            name='is_pinned',
            field=models.BooleanField(default=False, help_text="Keep this session's operations and API calls past the retention period.", verbose_name='pinned'),
        ),
    ]
