"""What is worth an alert: read from what analysis decided, never decided again here.

Session events read a finished session's stored budget checks, regressions and status;
spend reads the priced calls of a rolling window and this month's cost lines; silence
reads each workflow's latest session. Each returns drafts, keyed so that the same
happening always gets the same key (AlertEvent's uniqueness does the rest).
"""

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Max, Q, Sum

from metrics.alerts import wording
from metrics.alerts.models import AlertRule, EventKind
from metrics.models import ApiCall, BudgetCheck, CostLine, DailyCost, Regression, Session


@dataclass(frozen=True)
class Draft:
    kind: str
    key: str
    summary: str
    url: str
    details: dict = field(default_factory=dict)
    session: Session | None = None


def session_drafts(session: Session) -> list[Draft]:
    """A finished session's failed budgets, regressions and failure: one draft per kind."""
    if not session.is_finished:
        return []
    key, url = f"session:{session.pk}", wording.session_link(session)
    details = {"session": session.external_id, "workflow": session.workflow,
               "environment": session.environment}
    drafts = []
    failed = list(BudgetCheck.objects.filter(session=session, passed=False)
                  .select_related("budget").order_by("budget__name"))
    if failed:
        drafts.append(Draft(EventKind.BUDGET_FAILED, key,
                            wording.budgets_failed(session, failed), url,
                            {**details, "budgets": [
                                {"name": c.budget.name, "metric": c.budget.metric,
                                 "value": c.value, "threshold": c.budget.threshold}
                                for c in failed]}, session))
    regressions = list(Regression.objects.filter(session=session).order_by("-ratio"))
    if regressions:
        drafts.append(Draft(EventKind.REGRESSION, key,
                            wording.regressions_found(session, regressions), url,
                            {**details, "regressions": [
                                {"metric": r.metric, "name": r.name, "value": r.value,
                                 "baseline": r.baseline_value, "ratio": r.ratio}
                                for r in regressions]}, session))
    if session.status == Session.Status.FAILED:
        drafts.append(Draft(EventKind.SESSION_FAILED, key, wording.session_failed(session),
                            url, details, session))
    return drafts


def _session_filter(rule: AlertRule, prefix: str = "") -> Q:
    q = Q(**{f"{prefix}project_id": rule.project_id})
    if rule.workflow:
        q &= Q(**{f"{prefix}workflow": rule.workflow})
    if rule.environment:
        q &= Q(**{f"{prefix}environment": rule.environment})
    return q


def window_spend(rule: AlertRule, *, now: datetime) -> tuple[Decimal, int]:
    """The priced cost of the calls made in the rule's window, and the unpriced count."""
    since = now - timedelta(hours=rule.spend_window_hours)
    sums = ApiCall.objects.filter(_session_filter(rule, "session__"), at__gt=since,
                                  at__lte=now).aggregate(
        cost=Sum("cost_usd"), unpriced=Count("pk", filter=Q(cost_usd__isnull=True)))
    return sums["cost"] or Decimal(0), sums["unpriced"]


def spend_draft(rule: AlertRule, *, now: datetime) -> Draft | None:
    """The window's spend over the limit; keyed by the window-long slice of time it is in,
    so a spell over the limit alerts once per window, not at every check."""
    spent, unpriced = window_spend(rule, now=now)
    if spent <= rule.spend_limit_usd:
        return None
    window_s = rule.spend_window_hours * 3600
    return Draft(
        EventKind.SPEND, f"window:{int(now.timestamp() // window_s)}",
        wording.spend_over(spent=spent, limit=rule.spend_limit_usd,
                           hours=rule.spend_window_hours, unpriced=unpriced),
        wording.page_link("costs", rule.project),
        {"spent_usd": str(spent), "limit_usd": str(rule.spend_limit_usd),
         "window_hours": rule.spend_window_hours, "unpriced_calls": unpriced})


def month_to_date(rule: AlertRule, *, now: datetime) -> tuple[Decimal, int]:
    """This month's cost: from the daily cost rollup, or, for one environment (which the
    rollup does not split by), from the sessions' cost lines."""
    days = {"day__gte": now.date().replace(day=1), "day__lte": now.date()}
    if rule.environment:
        rows = CostLine.objects.filter(_session_filter(rule, "session__"), **days)
    else:
        rows = DailyCost.objects.filter(project_id=rule.project_id, **days)
        if rule.workflow:
            rows = rows.filter(workflow=rule.workflow)
    sums = rows.aggregate(cost=Sum("cost_usd"), unpriced=Sum("unpriced_calls"))
    return sums["cost"] or Decimal(0), sums["unpriced"] or 0


def burn_rate_draft(rule: AlertRule, *, now: datetime) -> Draft | None:
    """Spend so far, extended at the same daily rate to the month's end, over the limit.
    The first day counts as a whole day, so one early call does not project a fortune."""
    spent, unpriced = month_to_date(rule, now=now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed_days = max((now - month_start).total_seconds() / 86400, 1.0)
    month_days = calendar.monthrange(now.year, now.month)[1]
    projected = (spent / Decimal(str(elapsed_days)) * month_days).quantize(Decimal("0.01"))
    if projected <= rule.monthly_limit_usd:
        return None
    return Draft(
        EventKind.SPEND, f"month:{now:%Y-%m}",
        wording.burn_rate_over(spent=spent, projected=projected, limit=rule.monthly_limit_usd,
                               elapsed_days=elapsed_days, month_days=month_days,
                               unpriced=unpriced),
        wording.page_link("costs", rule.project),
        {"spent_usd": str(spent), "projected_usd": str(projected),
         "monthly_limit_usd": str(rule.monthly_limit_usd), "unpriced_calls": unpriced})


def spend_drafts(rule: AlertRule, *, now: datetime) -> list[Draft]:
    drafts = []
    if rule.spend_limit_usd is not None:
        drafts.append(spend_draft(rule, now=now))
    if rule.monthly_limit_usd is not None:
        drafts.append(burn_rate_draft(rule, now=now))
    return [d for d in drafts if d is not None]


def silence_drafts(rule: AlertRule, *, now: datetime) -> list[Draft]:
    """Each workflow whose latest session started longer ago than the rule expects."""
    quiet_since = now - timedelta(hours=rule.silence_after_hours)
    latest = (Session.objects.filter(_session_filter(rule)).values("workflow")
              .annotate(last=Max("started_at")).filter(last__lt=quiet_since).order_by())
    drafts = []
    for row in latest:
        last = (Session.objects.filter(_session_filter(rule), workflow=row["workflow"],
                                       started_at=row["last"])
                .select_related("episode", "project").first())
        hours = (now - row["last"]).total_seconds() / 3600
        drafts.append(Draft(
            EventKind.SILENCE, f"{row['workflow']}:{row['last'].isoformat()}",
            wording.silent(workflow=row["workflow"], hours_since=hours,
                           expected_hours=rule.silence_after_hours,
                           last=wording.session_name(last), last_started=row["last"]),
            wording.session_link(last),
            {"workflow": row["workflow"], "last_session": last.external_id,
             "hours_since": round(hours, 2)}))
    return drafts
