from django.contrib import admin

from ingest.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        # Keys are created with `manage.py create_api_key`, which shows the secret once.
        return False
