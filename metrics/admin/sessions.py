"""The admin: editors correct and annotate sessions; producers look and annotate.

Roles (groups made by migration 0005_roles) hold the permissions; every user of /admin/ also
needs staff status (is_staff). What each role may do here:

- Producers see every metrics table, add annotations and change their own. On a session's
  page every session field is read-only for them; they may save it only to annotate.
- Editors also change a session's episode, tags, notes and baseline flag, run the session
  actions, change episodes, and manage prices and budgets (metrics.admin_config).
- Superusers also manage API keys (ingest.admin).

Django writes every save made here to the admin's change history (LogEntry); the session
actions write their own entries (metrics.admin_actions).
"""


from django.contrib import admin
from django.db.models import Count, F, IntegerField, Max, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from metrics import permissions
from metrics.admin.actions import SESSION_ACTIONS
from metrics.admin.forms import AnnotationAdminForm, SessionAdminForm
from metrics.admin.scoping import ProjectScopedAdmin
from metrics.deletion import delete_sessions
from metrics.dispatch import enqueue_after_commit
from metrics.episode_runs import refresh_latest_runs
from metrics.links import session_url
from metrics.models import (
    Annotation,
    ApiCall,
    BudgetCheck,
    Episode,
    Operation,
    Project,
    Session,
)
from metrics.tasks import analyze_session, rebuild_rollups

admin.site.site_header = "perfmon admin"
admin.site.site_title = "perfmon admin"

SESSION_EDITABLE = ("episode", "tags", "notes", "is_baseline", "is_pinned")
EPISODE_RECENT_SESSIONS = 20


def count_of(model, **filters) -> Coalesce:
    """A correlated COUNT of a session's rows: no join, so counts do not multiply."""
    rows = (
        model.objects.filter(session=OuterRef("pk"), **filters)
        .order_by()
        .values("session")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def changelist_link(model: str, text: str, **params) -> str:
    url = reverse(f"admin:metrics_{model}_changelist") + "?" + urlencode(params)
    return format_html('<a href="{}">{}</a>', url, text)


def html_table(headers: list[str], rows: list[tuple]) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    project_path = "pk"
    list_display = ["name", "slug", "retention_days", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]

    def get_readonly_fields(self, request, obj=None):
        # Who sees a project is a superuser's call, like API keys.
        return [] if request.user.is_superuser else ["members"]


class BudgetStatusFilter(admin.SimpleListFilter):
    title = "budget status"
    parameter_name = "budget"

    def lookups(self, request, model_admin):
        return [("failed", "Over a budget"), ("passed", "Within budgets"),
                ("unchecked", "Not checked")]

    def queryset(self, request, queryset):
        match self.value():
            case "failed":
                return queryset.filter(budget_failed__gt=0)
            case "passed":
                return queryset.filter(budget_checked__gt=0, budget_failed=0)
            case "unchecked":
                return queryset.filter(budget_checked=0)
        return queryset


class AnnotationInline(admin.TabularInline):
    """Notes on the session page: author and time are filled in; others' notes are locked.

    A producer's formset shows other people's annotations disabled (Django then ignores
    whatever is posted for them); editors, who may change sessions, edit all of them.
    """

    model = Annotation
    extra = 1
    fields = ["text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]
    form = AnnotationAdminForm

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        user = request.user

        class OwnAnnotationsFormSet(formset):
            def _construct_form(self, i, **form_kwargs):
                form = super()._construct_form(i, **form_kwargs)
                instance = form.instance
                if instance.pk and not permissions.can_edit_annotation(user, instance):
                    for name in ("text", "DELETE"):
                        if name in form.fields:
                            form.fields[name].disabled = True
                return form

        return OwnAnnotationsFormSet


@admin.register(Session)
class SessionAdmin(ProjectScopedAdmin):
    form = SessionAdminForm
    list_display = [
        "external_id", "episode", "workflow", "status", "started_at", "duration_s",
        "cost_usd", "hit_rate", "budget_status", "annotation_count", "is_baseline",
        "dashboard",
    ]
    # Related-only: the filter lists the projects and episodes of the rows one may see.
    list_filter = [
        ("project", admin.RelatedOnlyFieldListFilter),
        ("episode", admin.RelatedOnlyFieldListFilter),
        "workflow", "status", "environment", "release", "is_baseline", BudgetStatusFilter,
    ]
    list_select_related = ["project", "episode"]
    search_fields = ["external_id", "episode__code", "tags"]
    search_help_text = "Session id, episode code or tag."
    date_hierarchy = "started_at"
    actions = SESSION_ACTIONS
    inlines = [AnnotationInline]
    fieldsets = [
        (None, {"fields": ["external_id", "project", "dashboard_link", *SESSION_EDITABLE]}),
        ("Run", {"fields": [
            "workflow", "release", "environment", "host", "status", "started_at", "ended_at",
            "duration_s",
        ]}),
        ("Usage", {"fields": [
            "operations_count", "api_calls_count", "api_errors_count", "prompt_tokens",
            "completion_tokens", "total_tokens", "cost_usd", "cache_hits", "cache_misses",
            "hit_rate", "cache_by_name", "counters", "metadata",
        ]}),
        ("Analysis", {"fields": [
            "budget_checks", "slowest_operations", "slowest_api_calls", "received_at",
            "merged_at", "analyzed_at", "detail_pruned_at",
        ]}),
    ]
    SLOWEST = 20

    def get_queryset(self, request):
        return (
            super().get_queryset(request)
            .select_related("project", "episode")
            .annotate(
                annotations_total=count_of(Annotation),
                # A deactivated budget's old checks no longer count against a session.
                budget_checked=count_of(BudgetCheck, budget__active=True),
                budget_failed=count_of(BudgetCheck, budget__active=True, passed=False),
            )
        )

    # --- permissions --------------------------------------------------------------------

    def has_edit_session_permission(self, request) -> bool:
        """Editing session fields and running the session actions: the Editors' right."""
        return request.user.has_perm(permissions.CHANGE_SESSION)

    def has_change_permission(self, request, obj=None) -> bool:
        # A producer "changes" a session only by annotating it: every session field is
        # read-only for them (get_readonly_fields) and the actions need edit_session.
        return self.has_edit_session_permission(request) or permissions.can_annotate(
            request.user
        )

    def has_add_permission(self, request) -> bool:
        return False  # sessions come from the generator, through the ingest API

    def get_readonly_fields(self, request, obj=None):
        every_field = [f for _, options in self.fieldsets for f in options["fields"]]
        if self.has_edit_session_permission(request):
            return [f for f in every_field if f not in SESSION_EDITABLE]
        return every_field

    def save_model(self, request, obj, form, change) -> None:
        # Only what the editor changed, so a merge that ingest committed meanwhile is not
        # overwritten with the values this form loaded.
        changed = [f for f in form.changed_data if f in SESSION_EDITABLE]
        if changed:
            obj.save(update_fields=[*changed, *obj.mark_edited(*changed)])
        if "episode" in changed:  # analysis moves the session's figures between episodes
            refresh_latest_runs([form.initial.get("episode"), obj.episode_id])
            enqueue_after_commit(analyze_session, obj.pk)

    def save_formset(self, request, form, formset, change) -> None:
        for annotation in formset.save(commit=False):
            if annotation.author_id is None:
                annotation.author = request.user
            annotation.save()
        for annotation in formset.deleted_objects:
            annotation.delete()

    def view_on_site(self, obj):
        return session_url(obj)

    def get_deleted_objects(self, objs, request):
        # Django's default lists every related row (tens of thousands of operations) and
        # asks for delete permission on each model, which nobody has on measurements:
        # a session's rows go with it, so count them instead.
        sessions = list(objs)
        pks = [s.pk for s in sessions]
        counts = {
            model._meta.verbose_name_plural: model.objects.filter(session_id__in=pks).count()
            for model in (Operation, ApiCall, Annotation)
        }
        listed = [f"Session: {s.external_id}" for s in sessions]
        return listed, {Session._meta.verbose_name_plural: len(sessions), **counts}, set(), []

    def delete_model(self, request, obj) -> None:
        delete_sessions(Session.objects.filter(pk=obj.pk))
        _rebuild_rollups_after_commit()

    def delete_queryset(self, request, queryset) -> None:
        delete_sessions(queryset)
        _rebuild_rollups_after_commit()

    # --- columns and read-only fields ---------------------------------------------------

    @admin.display(description="cache hit rate", ordering="cache_hit_rate")
    def hit_rate(self, obj) -> str:
        return "-" if obj.cache_hit_rate is None else f"{obj.cache_hit_rate:.0%}"

    @admin.display(description="budgets", ordering="budget_failed")
    def budget_status(self, obj) -> str:
        if not obj.budget_checked:
            return "-"
        return f"{obj.budget_failed} over" if obj.budget_failed else "ok"

    @admin.display(description="notes", ordering="annotations_total")
    def annotation_count(self, obj) -> int:
        return obj.annotations_total

    @admin.display(description="")
    def dashboard(self, obj) -> str:
        return format_html('<a href="{}">dashboard</a>', session_url(obj))

    @admin.display(description="dashboard page")
    def dashboard_link(self, obj) -> str:
        return format_html('<a href="{0}">{0}</a>', session_url(obj))

    @admin.display(description="budget checks")
    def budget_checks(self, obj) -> str:
        checks = obj.budget_checks.select_related("budget").order_by("budget__name")
        rows = [
            (c.budget.name, c.budget.get_metric_display(), c.budget.threshold, f"{c.value:g}",
             "pass" if c.passed else "OVER")
            for c in checks
        ]
        if not rows:
            return "Not checked (running, or no budget applies)."
        return html_table(["budget", "metric", "threshold", "value", ""], rows)

    @admin.display(description="slowest operations")
    def slowest_operations(self, obj) -> str:
        # Bounded: the slowest few through the (session, -duration_s) index, never all.
        rows = (
            obj.operations.filter(duration_s__isnull=False)
            .order_by("-duration_s", "pk")
            .values_list("name", "client_id", "duration_s", "success", "started_at")
            [: self.SLOWEST]
        )
        link = changelist_link(
            "operation", f"All {obj.operations_count} operations", session=obj.pk
        )
        return format_html("{}{}", html_table(
            ["name", "id", "duration (s)", "success", "started"],
            [(n, i, f"{d:.3f}", s, t) for n, i, d, s, t in rows],
        ), link)

    @admin.display(description="slowest API calls")
    def slowest_api_calls(self, obj) -> str:
        rows = (
            obj.api_calls.order_by(F("latency_s").desc(nulls_last=True), "pk")
            .values_list("provider", "model", "client_id", "latency_s", "total_tokens",
                         "cost_usd", "error")[: self.SLOWEST]
        )
        link = changelist_link(
            "apicall", f"All {obj.api_calls_count} API calls", session=obj.pk
        )
        return format_html("{}{}", html_table(
            ["model", "id", "latency (s)", "tokens", "cost (USD)", "error"],
            [(f"{p}/{m}", i, "-" if lat is None else f"{lat:.3f}", tok,
              "-" if cost is None else cost, err)
             for p, m, i, lat, tok, cost, err in rows],
        ), link)


@admin.register(Annotation)
class AnnotationAdmin(ProjectScopedAdmin):
    """All notes in one list; authors change their own, editors change and delete any."""

    project_path = "session__project"
    list_display = ["short_text", "session", "author", "created_at"]
    form = AnnotationAdminForm
    list_select_related = ["session", "author"]
    list_filter = ["author"]
    search_fields = ["text", "session__external_id"]
    raw_id_fields = ["session"]
    fields = ["session", "text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return super().has_change_permission(request)
        return permissions.can_edit_annotation(request.user, obj)

    def get_readonly_fields(self, request, obj=None):
        return ["session", *self.readonly_fields] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if obj.author_id is None and not change:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="annotation")
    def short_text(self, obj) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(Episode)
class EpisodeAdmin(ProjectScopedAdmin):
    list_display = [
        "code", "title", "project", "session_count", "duration_total", "tokens_total",
        "cost_total", "last_run",
    ]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["project"]
    search_fields = ["code", "title"]
    fields = [
        "project", "code", "title", "notes", "session_count", "duration_total",
        "tokens_total", "cost_total", "last_run", "recent_sessions",
    ]
    TOTALS = ["session_count", "duration_total", "tokens_total", "cost_total", "last_run"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            sessions_total=Count("sessions"),
            duration_sum_s=Sum("sessions__duration_s"),
            tokens_sum=Sum("sessions__total_tokens"),
            cost_sum_usd=Sum("sessions__cost_usd"),
            last_started_at=Max("sessions__started_at"),
        )

    def get_readonly_fields(self, request, obj=None):
        # The code is what sessions and rollups are keyed by: fix a wrong code by moving
        # the sessions (the session action), not by renaming the episode under them.
        fixed = ["project", "code"] if obj else []
        return [*fixed, *self.TOTALS, "recent_sessions"]

    def delete_queryset(self, request, queryset) -> None:
        orphans = list(Session.objects.filter(episode__in=queryset).values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        _reanalyze(orphans)

    def delete_model(self, request, obj) -> None:
        orphans = list(obj.sessions.values_list("pk", flat=True))
        super().delete_model(request, obj)
        _reanalyze(orphans)

    @admin.display(description="sessions", ordering="sessions_total")
    def session_count(self, obj) -> str:
        return changelist_link("session", str(obj.sessions_total), episode__id__exact=obj.pk)

    @admin.display(description="duration (s)", ordering="duration_sum_s")
    def duration_total(self, obj) -> str:
        return "-" if obj.duration_sum_s is None else f"{obj.duration_sum_s:.1f}"

    @admin.display(description="tokens", ordering="tokens_sum")
    def tokens_total(self, obj) -> int:
        return obj.tokens_sum or 0

    @admin.display(description="cost (USD)", ordering="cost_sum_usd")
    def cost_total(self, obj):
        return obj.cost_sum_usd or 0

    @admin.display(description="last run", ordering="last_started_at")
    def last_run(self, obj):
        return obj.last_started_at

    @admin.display(description="recent sessions")
    def recent_sessions(self, obj) -> str:
        rows = obj.sessions.order_by("-started_at").values_list(
            "pk", "external_id", "workflow", "status", "started_at", "duration_s", "cost_usd"
        )[:EPISODE_RECENT_SESSIONS]
        return format_html("{}{}", html_table(
            ["session", "workflow", "status", "started", "duration (s)", "cost (USD)"],
            [(format_html('<a href="{}">{}</a>',
                          reverse("admin:metrics_session_change", args=[pk]), external_id),
              workflow, status, started, "-" if duration is None else f"{duration:.1f}", cost)
             for pk, external_id, workflow, status, started, duration, cost in rows],
        ), changelist_link("session", "All sessions of this episode", episode__id__exact=obj.pk))


def _rebuild_rollups_after_commit() -> None:
    # A deleted session's lines are gone, so its share cannot be subtracted row by row;
    # rebuild the rollups from the lines that remain.
    enqueue_after_commit(rebuild_rollups)


def _reanalyze(session_pks: list[int]) -> None:
    for pk in session_pks:
        enqueue_after_commit(analyze_session, pk)

