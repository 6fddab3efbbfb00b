from django.db import migrations

DEFAULT_PROJECT_SLUG = "default"  # metrics.models.DEFAULT_PROJECT_SLUG, frozen here


def create_default_project(apps, schema_editor):
    Project = apps.get_model("metrics", "Project")
    Project.objects.get_or_create(slug=DEFAULT_PROJECT_SLUG, defaults={"name": "Default"})


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [migrations.RunPython(create_default_project, migrations.RunPython.noop)]
