"""Roles as Django groups: Producers look and annotate, Editors also correct and configure.

- Producers: view the dashboard and every metrics table in the admin, add annotations and
  edit their own (the admin and metrics.permissions enforce "own").
- Editors: Producers, plus change sessions and episodes (and add episodes, so a session can
  be moved to an episode code that did not exist yet), manage model prices and budgets,
  and edit or delete anyone's annotations.
- API keys are for superusers only (ingest.admin.ApiKeyAdmin); no group grants them.

The dashboard needs only the group. The admin also needs the user's "staff status"
(is_staff), which a migration cannot decide: set it on each producer or editor who should
use /admin/.

The permission lists are frozen here, as migrations should be; re-running the migration
(or migrating back and forth) sets each group to exactly these permissions.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWED_MODELS = [
    "project", "episode", "session", "operation", "apicall", "annotation", "modelprice",
    "budget", "budgetcheck", "finding", "regression", "operationstat", "costline",
    "dailycost", "episodecost", "dailyoperation", "episodeoperation",
]
PRODUCERS = [f"view_{model}" for model in VIEWED_MODELS] + [
    "add_annotation", "change_annotation",
]
EDITORS = PRODUCERS + [
    "change_session",
    "add_episode", "change_episode",
    "add_modelprice", "change_modelprice", "delete_modelprice",
    "add_budget", "change_budget", "delete_budget",
    "delete_annotation",
]
ROLES = {"Producers": PRODUCERS, "Editors": EDITORS}


def create_roles(apps, schema_editor):
    # Permissions are normally created after the last migration (post_migrate); the
    # groups need them now, on a fresh database too.
    create_permissions(global_apps.get_app_config("metrics"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        permissions = list(
            Permission.objects.filter(content_type__app_label="metrics", codename__in=codenames)
        )
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"permissions missing for {name}: {sorted(missing)}")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0004_model_prices_and_default_budgets"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
