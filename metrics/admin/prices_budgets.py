"""Prices and budgets: what editors configure, and how a change reaches stored figures."""


from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from metrics import permissions
from metrics.admin.forms import BudgetForm, ModelPriceForm
from metrics.admin.read_only import ReadOnly
from metrics.admin.scoping import ProjectScopedAdmin
from metrics.analysis.budgets import recount_budget_failures
from metrics.models import (
    Budget,
    BudgetCheck,
    ModelPrice,
    PriceChange,
    Session,
    SessionRepricing,
)


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """A price added, edited or deleted is recorded and reprices the calls it covers
    (metrics.signals); the history is under "Price changes"."""

    form = ModelPriceForm
    list_display = [
        "provider", "model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
        "cache_write_per_mtok", "cache_write_1h_per_mtok", "valid_from", "source",
    ]
    list_filter = ["provider"]
    search_fields = ["provider", "model"]
    date_hierarchy = "valid_from"

    def get_readonly_fields(self, request, obj=None):
        # A price belongs to its model: to price another model, add a row for it.
        return ["provider", "model"] if obj else []


class SessionRepricingInline(ReadOnly, admin.TabularInline):
    model = SessionRepricing
    fields = ["session", "cost_before_usd", "cost_after_usd", "unpriced_before",
              "unpriced_after", "repriced_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        # Prices are shared; the sessions they repriced belong to projects.
        queryset = super().get_queryset(request).select_related("session")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(session__project__in=permissions.visible_projects(request.user))


@admin.register(PriceChange)
class PriceChangeAdmin(ReadOnly, admin.ModelAdmin):
    """The record of price changes and the sessions each repriced: read-only history."""

    list_display = ["changed_at", "provider", "model", "kind", "affects_from",
                    "sessions_affected", "repriced_at"]
    list_filter = ["kind", "provider"]
    search_fields = ["provider", "model"]
    date_hierarchy = "changed_at"
    inlines = [SessionRepricingInline]


@admin.register(Budget)
class BudgetAdmin(ProjectScopedAdmin):
    form = BudgetForm
    list_display = [
        "name", "project", "workflow_or_all", "metric", "threshold", "reruns_only", "active",
        "violations",
    ]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter), "metric", "active"]
    list_select_related = ["project"]
    search_fields = ["name", "workflow"]

    def get_queryset(self, request):
        failed = (
            BudgetCheck.objects.filter(budget=OuterRef("pk"), passed=False)
            .order_by().values("budget").annotate(n=Count("pk")).values("n")
        )
        return super().get_queryset(request).annotate(
            failed_checks=Coalesce(Subquery(failed, output_field=IntegerField()), Value(0))
        )

    def get_readonly_fields(self, request, obj=None):
        # Stored checks hold the value of this budget's metric in this project; another
        # metric is another budget.
        return ["project", "metric"] if obj else []

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and "threshold" in form.changed_data:
            rejudge_checks(obj)
        if change and {"workflow", "reruns_only"} & set(form.changed_data):
            self.message_user(
                request,
                "Which sessions this budget applies to changed: existing checks follow when "
                "the sessions are next analyzed (Re-run analysis on the sessions).",
                messages.WARNING,
            )

    @transaction.atomic
    def delete_model(self, request, obj) -> None:
        self.delete_queryset(request, Budget.objects.filter(pk=obj.pk))

    @transaction.atomic
    def delete_queryset(self, request, queryset) -> None:
        # The budgets' checks go with them: the sessions' counts of failed checks follow.
        judged = list(BudgetCheck.objects.filter(budget__in=queryset.values("pk"), passed=False)
                      .values_list("session_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        recount_budget_failures(Session.objects.filter(pk__in=judged))

    @admin.display(description="workflow", ordering="workflow")
    def workflow_or_all(self, obj) -> str:
        return obj.workflow or "(all)"

    @admin.display(description="sessions over", ordering="failed_checks")
    def violations(self, obj) -> int:
        return obj.failed_checks


def rejudge_checks(budget: Budget) -> int:
    """Pass or fail the budget's stored checks against its new threshold, in one UPDATE;
    then recount the failed checks of the sessions they belong to."""
    if budget.metric in Budget.AT_LEAST:
        within = Q(value__gte=budget.threshold)
    else:
        within = Q(value__lte=budget.threshold)
    checks = BudgetCheck.objects.filter(budget=budget)
    judged = checks.update(passed=Case(When(within, then=Value(True)), default=Value(False)))
    recount_budget_failures(Session.objects.filter(pk__in=checks.values("session_id")))
    return judged
