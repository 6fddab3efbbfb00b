from django.contrib import admin

from metrics.models import Annotation, Episode, ModelPrice, Project, Session


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "project"]
    list_filter = ["project"]
    search_fields = ["code", "title"]


class AnnotationInline(admin.TabularInline):
    model = Annotation
    extra = 1
    fields = ["text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "external_id", "episode", "workflow", "status", "started_at", "duration_s",
        "cost_usd", "cache_hit_rate",
    ]
    list_filter = ["project", "status", "workflow", "environment", "is_baseline"]
    list_select_related = ["episode"]
    search_fields = ["external_id", "episode__code"]
    date_hierarchy = "started_at"
    raw_id_fields = ["episode"]
    readonly_fields = [
        "project", "external_id", "started_at", "ended_at", "duration_s", "status",
        "api_calls_count", "api_errors_count", "total_tokens", "cost_usd", "cache_hits",
        "cache_misses", "cache_hit_rate", "received_at", "merged_at", "analyzed_at",
    ]
    inlines = [AnnotationInline]

    def save_formset(self, request, form, formset, change):
        for annotation in formset.save(commit=False):
            if annotation.author_id is None:
                annotation.author = request.user
            annotation.save()
        formset.save_m2m()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "provider", "model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
        "valid_from",
    ]
    list_filter = ["provider"]
    search_fields = ["model"]
