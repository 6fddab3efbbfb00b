"""Read-only lists of a session's operations and API calls, the full lists the session
page links to. Nobody edits measurements: they are what the generator sent.
"""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from metrics.models import ApiCall, Operation, Session


class SessionFilter(admin.SimpleListFilter):
    """``?session=<pk>``: one session's rows; shown only while set (never lists sessions)."""

    title = "session"
    parameter_name = "session"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not value.isdigit():
            return []
        return list(Session.objects.filter(pk=value).values_list("pk", "external_id"))

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"session must be an id, not {value!r}")
        return queryset.filter(session_id=value)


class ReadOnlyAdmin(admin.ModelAdmin):
    # Counting a whole table of measurements is slow and says little; pages still work.
    show_full_result_count = False
    list_select_related = ["session"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # rows go with their session


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
