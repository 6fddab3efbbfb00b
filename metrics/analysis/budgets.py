"""Checking a finished session against its project's budgets."""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from metrics.models import Budget, BudgetCheck, Session
from metrics.producer_units import megabytes, per_unit


def metric_values(session: Session) -> dict[str, float | None]:
    """The figures budgets are set on; None where the session cannot say."""
    units = per_unit(session)
    scenes = units["scenes"]
    return {
        Budget.Metric.DURATION_S: session.duration_s,
        Budget.Metric.CACHE_HIT_RATE: session.cache_hit_rate,
        Budget.Metric.COST_USD: float(session.cost_usd),
        Budget.Metric.API_ERROR_RATE: (
            session.api_errors_count / session.api_calls_count
            if session.api_calls_count else None
        ),
        Budget.Metric.TOKENS_PER_SCENE: session.total_tokens / scenes if scenes else None,
        Budget.Metric.COST_PER_SCENE_USD: units["cost_per_scene_usd"],
        Budget.Metric.SECONDS_PER_SCENE: units["seconds_per_scene"],
        Budget.Metric.PEAK_MEMORY_MB: megabytes(session.peak_memory_bytes),
    }


def is_rerun(session: Session) -> bool:
    """Whether the session's episode ran before: a re-run should find a warm cache."""
    if session.episode_id is None:
        return False
    return Session.objects.filter(
        episode_id=session.episode_id, started_at__lt=session.started_at
    ).exists()


def check_budgets(session: Session) -> list[BudgetCheck]:
    """Replace the session's budget checks, and its count of failed ones; running
    sessions are not judged yet."""
    BudgetCheck.objects.filter(session=session).delete()
    checks = BudgetCheck.objects.bulk_create(_judge(session)) if session.is_finished else []
    failures = sum(not check.passed for check in checks)
    session.save_changed(budget_failures_count=failures)
    return checks


def recount_budget_failures(sessions: QuerySet[Session]) -> int:
    """Set each of ``sessions``' count of failed checks from its stored checks, after
    checks were judged again or deleted other than by ``check_budgets``."""
    failed = (
        BudgetCheck.objects.filter(session=OuterRef("pk"), passed=False)
        .order_by().values("session").annotate(n=Count("pk")).values("n")
    )
    return sessions.update(budget_failures_count=Coalesce(
        Subquery(failed, output_field=IntegerField()), Value(0)))


def _judge(session: Session) -> list[BudgetCheck]:
    budgets = Budget.objects.filter(project_id=session.project_id, active=True).filter(
        workflow__in=["", session.workflow]
    )
    values = metric_values(session)
    rerun = None
    checks = []
    for budget in budgets:
        value = values[budget.metric]
        if value is None:
            continue
        if budget.reruns_only:
            rerun = is_rerun(session) if rerun is None else rerun
            if not rerun:
                continue
        checks.append(
            BudgetCheck(session=session, budget=budget, value=value, passed=budget.passes(value))
        )
    return checks
