"""Read-only lists of a session's operations and API calls, the full lists the session
page links to. Nobody edits measurements: they are what the generator sent.
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from metrics import permissions
from metrics.admin.read_only import ReadOnly
from metrics.admin.scoping import ProjectScopedAdmin
from metrics.models import ApiCall, Operation, Session


class SessionFilter(admin.SimpleListFilter):
    """``?session=<pk>``: one session's rows; shown only while set (never lists sessions)."""

    title = "session"
    parameter_name = "session"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not value.isdigit():
            return []
        sessions = Session.objects.filter(pk=value)
        if not request.user.is_superuser:
            sessions = sessions.filter(project__in=permissions.visible_projects(request.user))
        # Always one choice while set: a filter without choices would not be applied, and
        # the list would show every session's rows instead of none.
        return list(sessions.values_list("pk", "external_id")) or [(value, "(not found)")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"session must be an id, not {value!r}")
        return queryset.filter(session_id=value)


class ReadOnlyAdmin(ReadOnly, ProjectScopedAdmin):
    project_path = "session__project"
    # Counting a whole table of measurements is slow and says little; pages still work.
    show_full_result_count = False
    list_select_related = ["session"]


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = [
        "name", "session", "client_id", "duration_s", "success", "started_at", "cache_hits",
        "cache_misses",
    ]
    list_filter = [SessionFilter, "success"]
    search_fields = ["name", "client_id"]
    # With the session filter, the (session, -duration_s) index serves this order.
    ordering = ["-duration_s"]


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    list_display = [
        "client_id", "session", "provider", "model", "latency_s", "total_tokens", "cost_usd",
        "cost_source", "error", "at",
    ]
    list_filter = [SessionFilter, "cost_source", "error"]
    search_fields = ["client_id", "model", "provider"]
    ordering = ["-latency_s"]
