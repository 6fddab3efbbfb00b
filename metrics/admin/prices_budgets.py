"""Prices and budgets: what editors configure, and how a change reaches stored figures."""


from django.contrib import admin, messages
from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from metrics.admin.forms import BudgetForm, ModelPriceForm
from metrics.admin.scoping import ProjectScopedAdmin
from metrics.dispatch import enqueue_after_commit
from metrics.models import Budget, BudgetCheck, ModelPrice
from metrics.tasks import reprice_model


def _reprice_after_commit(price: ModelPrice, since) -> None:
    enqueue_after_commit(reprice_model, price.provider, price.model, since.isoformat())


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """A saved price reprices the calls it covers (metrics.signals, from its valid-from).

    Here, the cases the signal cannot see: a row moved to a later valid-from, and a deleted
    row, leave calls from the old valid-from on to be priced again.
    """

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

    def save_model(self, request, obj, form, change) -> None:
        before = ModelPrice.objects.filter(pk=obj.pk).values_list("valid_from", flat=True)
        old_valid_from = before.first() if change else None
        super().save_model(request, obj, form, change)
        if old_valid_from is not None and old_valid_from < obj.valid_from:
            _reprice_after_commit(obj, old_valid_from)

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        _reprice_after_commit(obj, obj.valid_from)

    def delete_queryset(self, request, queryset) -> None:
        prices = list(queryset)
        super().delete_queryset(request, queryset)
        for price in prices:
            _reprice_after_commit(price, price.valid_from)


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

    @admin.display(description="workflow", ordering="workflow")
    def workflow_or_all(self, obj) -> str:
        return obj.workflow or "(all)"

    @admin.display(description="sessions over", ordering="failed_checks")
    def violations(self, obj) -> int:
        return obj.failed_checks


def rejudge_checks(budget: Budget) -> int:
    """Pass or fail the budget's stored checks against its new threshold, in one UPDATE."""
    if budget.metric in Budget.AT_LEAST:
        within = Q(value__gte=budget.threshold)
    else:
        within = Q(value__lte=budget.threshold)
    return BudgetCheck.objects.filter(budget=budget).update(
        passed=Case(When(within, then=Value(True)), default=Value(False))
    )
