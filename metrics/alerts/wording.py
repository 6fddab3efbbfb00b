"""What each event says, in a producer's words, with numbers, units and a link."""

from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from metrics import links
from metrics.models import DEFAULT_PROJECT_SLUG, Budget, BudgetCheck, Project, Regression, Session


def absolute(path: str) -> str:
    return settings.PERFMON_BASE_URL + path


def session_link(session: Session) -> str:
    return absolute(links.session_url(session))


def money(value: float | Decimal) -> str:
    value = float(value)
    if value and abs(value) < 0.01:
        return f"${value:.4f}"  # a fraction of a cent is not "$0.00"
    return f"${value:,.2f}"


def percent_over(value: float, limit: float) -> str:
    if limit <= 0:
        return "over a zero budget"
    return f"{(value - limit) / limit:.0%} over"


def session_name(session: Session) -> str:
    """'ep012 take 2': the episode and which of its runs this is, by start time."""
    if session.episode_id is None:
        return session.external_id
    take = Session.objects.filter(
        episode_id=session.episode_id, started_at__lte=session.started_at
    ).count()
    return f"{session.episode.code} take {take}"


def budget_phrase(check: BudgetCheck) -> str:
    value, limit = check.value, check.budget.threshold
    metric = check.budget.metric
    if metric == Budget.Metric.COST_USD:
        return (f"cost {money(value)}, budget {money(limit)} per run: "
                f"{percent_over(value, limit)}")
    if metric == Budget.Metric.DURATION_S:
        return f"took {value:,.1f} s, budget {limit:,.1f} s: {percent_over(value, limit)}"
    if metric == Budget.Metric.CACHE_HIT_RATE:
        return (f"cache hit rate {value:.0%}, budget at least {limit:.0%}: "
                f"{(limit - value) * 100:.0f} points under")
    if metric == Budget.Metric.API_ERROR_RATE:
        return f"API error rate {value:.1%}, budget at most {limit:.1%}"
    return (f"{value:,.0f} tokens per scene, budget {limit:,.0f}: "
            f"{percent_over(value, limit)}")


def budgets_failed(session: Session, checks: list[BudgetCheck]) -> str:
    return f"{session_name(session)} " + "; ".join(budget_phrase(c) for c in checks)


def regression_phrase(regression: Regression) -> str:
    if regression.baseline_kind == Regression.BaselineKind.MARKED:
        against = "median of the sessions marked as baseline"
    else:
        runs = len(regression.baseline_sessions)
        against = "previous run" if runs == 1 else f"median of the {runs} previous runs"
    if regression.metric == Regression.Metric.COST:
        return (f"cost {money(regression.value)}, {regression.ratio:.2f} times the "
                f"{against} ({money(regression.baseline_value)})")
    return (f"{regression.name} took {regression.value:,.1f} s of its own time, "
            f"{regression.ratio:.2f} times the {against} ({regression.baseline_value:,.1f} s)")


def regressions_found(session: Session, regressions: list[Regression]) -> str:
    return (f"{session_name(session)} regressed: "
            + "; ".join(regression_phrase(r) for r in regressions))


def session_failed(session: Session) -> str:
    took = (f"after {session.duration_s:,.1f} s" if session.duration_s is not None
            else "(duration unknown)")
    calls = (f"{session.api_errors_count} of {session.api_calls_count} API calls failed"
             if session.api_calls_count else "no API calls recorded")
    return (f"{session_name(session)} failed {took}: {calls}, "
            f"cost so far {money(session.cost_usd)}")


def spend_over(*, spent: Decimal, limit: Decimal, hours: int, unpriced: int) -> str:
    text = (f"Spend in the last {hours} h is {money(spent)}, over the limit of "
            f"{money(limit)}: {percent_over(float(spent), float(limit))}")
    return text + _unpriced(unpriced)


def burn_rate_over(*, spent: Decimal, projected: Decimal, limit: Decimal, elapsed_days: float,
                   month_days: int, unpriced: int) -> str:
    text = (f"Spend this month is {money(spent)} after {elapsed_days:.1f} of {month_days} "
            f"days; at this rate it reaches {money(projected)} by the month's end, over the "
            f"monthly limit of {money(limit)}")
    return text + _unpriced(unpriced)


def _unpriced(calls: int) -> str:
    if not calls:
        return ""
    return f" (plus {calls} call{'s' if calls > 1 else ''} with no price, not counted)"


def silent(*, workflow: str, hours_since: float, expected_hours: float, last: str,
           last_started: datetime) -> str:
    return (f"No session from workflow {workflow or '(none)'} for {hours_since:,.1f} h "
            f"(expected at least every {expected_hours:g} h); the last, {last}, started "
            f"{last_started:%Y-%m-%d %H:%M} UTC")


def page_link(name: str, project: Project) -> str:
    """A dashboard page of the project, naming it unless it is the default."""
    path = reverse(f"metrics:{name}")
    if project.slug != DEFAULT_PROJECT_SLUG:
        path += "?" + urlencode({"project": project.slug})
    return absolute(path)
