"""Partition the raw tables by session key on PostgreSQL (see metrics.partitions).

The links between raw rows lose their database constraint first (on both backends): a
foreign key into a partitioned table must name its partition key. On PostgreSQL the two
tables are then rebuilt as partitioned tables, rows, keys and indexes kept. The rows are
copied, so on a large database this step takes minutes (docs/scaling.md).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from metrics.partitions import create_partitioned_tables

    create_partitioned_tables(schema_editor, today=timezone.now().date())


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from metrics.partitions import drop_partitioning

    drop_partitioning(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0020_cost_write_1h'),
    ]

    operations = [
        migrations.AlterField(
            model_name='apicall',
            name='operation',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='api_calls', to='metrics.operation'),
        ),
        migrations.AlterField(
            model_name='operation',
            name='parent',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='children', to='metrics.operation'),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
