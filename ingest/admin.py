"""API keys, for superusers only: create (the secret is shown once), revoke, see last use.

Only a hash of the secret is stored. The page that answers the "add" form is the one place
the secret ever appears: it is not put in a message (messages live in the session store),
and the page is marked not to be cached.
"""

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from ingest.models import ApiKey


class SuperuserOnlyAdmin(admin.ModelAdmin):
    def _superuser(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._superuser(request)


@admin.register(ApiKey)
class ApiKeyAdmin(SuperuserOnlyAdmin):
    list_display = ["name", "project", "prefix", "created_at", "last_used_at", "status"]
    list_filter = ["project", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["project"]
    search_fields = ["name", "prefix"]
    actions = ["revoke"]
    _SECRET_ATTR = "_perfmon_new_api_key"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["project", "name"]
        return ["project", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Revoking is the "revoke" action, which stamps the time and logs it.
        return ["project", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw_key = ApiKey.generate(project=obj.project, name=obj.name)
        # The admin goes on with ``obj`` (logging, the response): make it the stored row.
        obj.pk, obj.prefix, obj.secret_hash, obj.created_at = (
            key.pk, key.prefix, key.secret_hash, key.created_at
        )
        obj._state.adding = False
        setattr(request, self._SECRET_ATTR, raw_key)

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, self._SECRET_ATTR, None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/ingest/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API key created",
                "opts": self.model._meta,
                "key": obj,
                "raw_key": raw_key,
            },
        )
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    @admin.display(description="status", ordering="revoked_at")
    def status(self, obj) -> str:
        return "active" if obj.is_active else f"revoked {obj.revoked_at:%Y-%m-%d %H:%M}"

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        now = timezone.now()
        ApiKey.objects.filter(pk__in=[k.pk for k in keys]).update(revoked_at=now)
        if keys:
            LogEntry.objects.log_actions(
                user_id=request.user.pk, queryset=keys, action_flag=CHANGE,
                change_message="Revoked.",
            )
        self.message_user(request, f"Revoked {len(keys)} key(s); they are refused from now on.")
