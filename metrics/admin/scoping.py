"""Admin lists and forms limited to the projects a person is a member of.

A person who is not a superuser sees the rows of their own projects only, and may pick
only those projects and their episodes and sessions in a form. Another project's row is
"not found", exactly like one that does not exist.
"""

from django.contrib import admin

from metrics import permissions
from metrics.models import Episode, Session


class ProjectScopedAdmin(admin.ModelAdmin):
    project_path = "project"  # the lookup from this admin's model to its project

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = permissions.visible_projects(request.user)
        return queryset.filter(**{f"{self.project_path}__in": visible})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            visible = permissions.visible_projects(request.user)
            choices = {
                "project": visible,
                "episode": Episode.objects.filter(project__in=visible),
                "session": Session.objects.filter(project__in=visible),
            }
            if db_field.name in choices:
                kwargs["queryset"] = choices[db_field.name]
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
