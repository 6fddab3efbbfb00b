"""Turn stored rows into the API's response shapes."""

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from metrics import payloads, selectors
from metrics.links import session_url
from metrics.models import Episode, Session


def dashboard_url(request: HttpRequest, session: Session) -> str:
    return request.build_absolute_uri(session_url(session))


def session_summary(request: HttpRequest, session: Session) -> dict[str, Any]:
    return {
        "id": session.external_id,
        "episode": session.episode.code if session.episode else None,
        "workflow": session.workflow,
        "release": session.release,
        "environment": session.environment,
        "host": session.host,
        "status": session.status,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "duration_s": session.duration_s,
        "cache": {
            "hits": session.cache_hits,
            "misses": session.cache_misses,
            "hit_rate": session.cache_hit_rate,
        },
        "api": {
            "calls": session.api_calls_count,
            "errors": session.api_errors_count,
            "prompt_tokens": session.prompt_tokens,
            "completion_tokens": session.completion_tokens,
            "total_tokens": session.total_tokens,
            "cost_usd": float(session.cost_usd),
        },
        "url": dashboard_url(request, session),
    }


@dataclass(frozen=True)
class RowPaging:
    """Pages of the operations and API calls a session detail includes."""

    page_size: int = payloads.DEFAULT_PAGE_ROWS
    operations_cursor: str | None = None
    api_calls_cursor: str | None = None


def session_detail(
    request: HttpRequest, session: Session, *, include: set[str],
    paging: RowPaging | None = None,
) -> dict[str, Any]:
    report = selectors.session_report(session)
    detail = session_summary(request, session)
    detail.update(
        counters=session.counters,
        tags=session.tags,
        metadata=session.metadata,
        is_baseline=session.is_baseline,
        is_pinned=session.is_pinned,
        analyzed_at=session.analyzed_at,
        detail_pruned_at=session.detail_pruned_at,
        bottlenecks=[
            {"name": s.name, "self_time_s": s.self_time_s, "share": s.share,
             "occurrences": s.occurrences}
            for s in report.bottlenecks
        ],
        slowest_operations=[
            {"id": row["client_id"], "name": row["name"], "duration_s": row["duration_s"]}
            for row in report.slowest
        ],
        findings=[
            {"kind": f.kind, "subject": f.subject, "summary": f.summary,
             "evidence": f.evidence, "impact_s": f.impact_s, "impact_usd": f.impact_usd}
            for f in report.findings
        ],
        regressions=[
            {"metric": r.metric, "name": r.name, "value": r.value,
             "baseline_value": r.baseline_value, "ratio": r.ratio,
             "baseline_kind": r.baseline_kind, "baseline_sessions": r.baseline_sessions}
            for r in report.regressions
        ],
        budgets=[
            {"budget": c.budget.name, "metric": c.budget.metric,
             "threshold": c.budget.threshold, "value": c.value, "passed": c.passed}
            for c in report.budget_checks
        ],
        budget_violations=report.budget_violations,
        unpriced_calls=report.unpriced_calls,
        sdk=report.sdk,
        otlp=report.otlp,
    )
    paging = paging or RowPaging()
    if "operations" in include:
        detail["operations"], detail["operations_next_cursor"] = payloads.operation_page(
            session, cursor=paging.operations_cursor, limit=paging.page_size
        )
    if "api_calls" in include:
        detail["api_calls"], detail["api_calls_next_cursor"] = payloads.api_call_page(
            session, cursor=paging.api_calls_cursor, limit=paging.page_size
        )
    return detail


def episode_totals(episode: Episode) -> dict[str, Any]:
    hits, misses = episode.cache_hits_total, episode.cache_misses_total
    return {
        "code": episode.code,
        "title": episode.title,
        "sessions": episode.session_count,
        "duration_s": episode.duration_total_s,
        "total_tokens": episode.tokens_total,
        "cost_usd": float(episode.cost_total_usd or 0),
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_hit_rate": hits / (hits + misses) if hits + misses else None,
        "first_started_at": episode.first_started_at,
        "last_started_at": episode.last_started_at,
    }
