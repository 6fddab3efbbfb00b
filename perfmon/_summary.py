"""The human-readable session report (``PerformanceMetrics.get_summary()``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from perfmon import _config
from perfmon._session import _COUNTER_LABELS

if TYPE_CHECKING:
    from perfmon._session import PerformanceMetrics


def _label(counter: str) -> str:
    return _COUNTER_LABELS.get(counter) or counter.replace("_", " ").capitalize()


def _number(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _cache_lines(metrics: PerformanceMetrics) -> list[str]:
    lines = [
        "Cache Performance:",
        f"  Hit Rate: {metrics.cache_hit_rate:.1f}% "
        f"({metrics.cache_hits} hits, {metrics.cache_misses} misses)",
    ]
    for name, counts in sorted(metrics.cache_by_name.items()):
        lookups = counts["hits"] + counts["misses"]
        rate = counts["hits"] / lookups * 100 if lookups else 0.0
        lines.append(f"    {name}: {rate:.1f}% ({counts['hits']} hits, {counts['misses']} misses)")
    return lines


def _api_lines(metrics: PerformanceMetrics) -> list[str]:
    cost = f"  Est. Cost: ${metrics.estimated_api_cost:.4f}"
    if metrics.unpriced_api_calls:
        plural = "s" if metrics.unpriced_api_calls != 1 else ""
        cost += f" ({metrics.unpriced_api_calls} call{plural} not priced here)"
    return [
        "API Usage:",
        f"  Calls: {metrics.api_calls} (Errors: {metrics.api_errors})",
        f"  Tokens: {metrics.total_tokens_used:,}",
        cost,
    ]


def _export_line() -> list[str]:
    stats = _config.stats()
    if stats is None:
        return []
    shown = ", ".join(
        f"{stats[key]} {key}"
        for key in ("sent", "retried", "spooled", "resent", "dropped", "rejected")
    )
    return [f"Export (this process): {shown}"]


def render(metrics: PerformanceMetrics) -> str:
    if metrics.finished:
        duration = f"Total Duration: {metrics.total_duration_seconds:.2f}s"
    else:
        duration = f"Total Duration: {metrics.elapsed_seconds:.2f}s (running)"
    lines = [f"Performance Summary (Session: {metrics.session_id})", "=" * 60, duration]
    lines += _cache_lines(metrics)
    lines += _api_lines(metrics)
    lines.append("Generation Stats:")
    lines += [f"  {_label(k)}: {_number(v)}" for k, v in metrics.counters.items()]

    lines.append("Slowest Operations:")
    slowest = metrics.slowest_operations
    lines += [f"  {item['operation']}: {item['duration']:.2f}s" for item in slowest] or ["  none"]

    threshold = metrics.bottleneck_threshold * 100
    lines.append(f"Bottleneck Warnings (self time above {threshold:g}% of the session):")
    lines += [f"  {warning}" for warning in metrics.bottleneck_warnings] or ["  none"]
    lines += _export_line()
    return "\n".join(lines)


def from_payload(payload: dict[str, Any], *, bottleneck_threshold: float | None = None) -> str:
    """The summary of a schema-v1 payload, as ``get_summary()`` printed it for the session.

    For a session read back from a server (e.g. its export). ``cost_usd`` of a call counts
    when it is a number; a null cost counts as a call not priced here.
    """
    from perfmon._core import OperationMetrics
    from perfmon._session import DEFAULT_BOTTLENECK_THRESHOLD, PerformanceMetrics

    fields = payload["session"]
    threshold = bottleneck_threshold
    if threshold is None:
        threshold = DEFAULT_BOTTLENECK_THRESHOLD
    metrics = PerformanceMetrics(fields["id"], _when(fields["started_at"]),
                                 bottleneck_threshold=threshold)
    anchor = metrics._anchor
    if fields.get("ended_at"):
        metrics.end_ns = anchor.to_ns(_when(fields["ended_at"]))
        metrics.status = fields.get("status") or "completed"
    cache = fields.get("cache") or {}
    metrics.cache_hits, metrics.cache_misses = cache.get("hits", 0), cache.get("misses", 0)
    metrics._cache_by_name = {
        name: [counts.get("hits", 0), counts.get("misses", 0)]
        for name, counts in (cache.get("by_name") or {}).items()
    }
    metrics.counters = dict(fields.get("counters") or {})

    calls = payload.get("api_calls") or []
    metrics.api_calls = len(calls)
    metrics.api_errors = sum(1 for call in calls if call.get("error"))
    metrics.total_tokens_used = sum(call.get("total_tokens") or 0 for call in calls)
    metrics.estimated_api_cost = sum(call["cost_usd"] for call in calls
                                     if call.get("cost_usd") is not None)
    metrics.unpriced_api_calls = sum(1 for call in calls if call.get("cost_usd") is None)

    by_id: dict[str, OperationMetrics] = {}
    for wire in payload.get("operations") or []:
        op = OperationMetrics(wire["name"])
        op.start_ns = anchor.to_ns(_when(wire["started_at"]))
        duration = wire.get("duration_s")
        op.end_ns = None if duration is None else op.start_ns + round(duration * 1e9)
        op._owner = metrics
        by_id[wire["id"]] = op
    for wire in payload.get("operations") or []:
        by_id[wire["id"]]._parent = by_id.get(wire.get("parent_id") or "", metrics)
    metrics._ops = list(by_id.values())
    return render(metrics)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)
