"""Drop the index of its own on the session key of operations and API calls.

The unique (session_id, client_id) key of each table starts with the same column and
serves every lookup by session, so the separate index only cost ingest one more index
entry per row. Only the index goes: the foreign key stays as it is (Django's AlterField
would drop and re-add it, and re-adding it checks every stored row). Works on SQLite and on
the partitioned PostgreSQL tables (dropping a partitioned index drops its partitions').
"""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("Operation", "ApiCall")


def _session_indexes(schema_editor, table: str) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name for name, info in constraints.items()
        if info["columns"] == ["session_id"] and info["index"] and not info["unique"]
        and not info["primary_key"] and not info["foreign_key"]
    ]


def drop_session_index(apps, schema_editor):
    for model_name in TABLES:
        model = apps.get_model("metrics", model_name)
        for name in _session_indexes(schema_editor, model._meta.db_table):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_session_index(apps, schema_editor):
    for model_name in TABLES:
        model = apps.get_model("metrics", model_name)  # as before: db_index=True
        if not _session_indexes(schema_editor, model._meta.db_table):
            field = model._meta.get_field("session")
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0021_partition_raw_tables'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='apicall',
                    name='session',
                    field=models.ForeignKey(db_index=False,
                                            on_delete=django.db.models.deletion.CASCADE,
                                            related_name='api_calls', to='metrics.session'),
                ),
                migrations.AlterField(
                    model_name='operation',
                    name='session',
                    field=models.ForeignKey(db_index=False,
                                            on_delete=django.db.models.deletion.CASCADE,
                                            related_name='operations', to='metrics.session'),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_session_index, create_session_index, elidable=False),
            ],
        ),
    ]
