"""The human-readable session report (``PerformanceMetrics.get_summary()``).

Reads the session through its public attributes only, so it imports no other part of the SDK
but the exporter's configuration (for the export line).
"""

from __future__ import annotations

from typing import Any

from perfmon import _config

COUNTER_LABELS = {
    "scenes_generated": "Scenes",
    "dialogue_lines_generated": "Dialogue Lines",
    "stage_directions_generated": "Stage Directions",
    "jokes_analyzed": "Jokes Analyzed",
}


def _label(counter: str) -> str:
    return COUNTER_LABELS.get(counter) or counter.replace("_", " ").capitalize()


def _number(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _cache_lines(metrics: Any) -> list[str]:
    lines = [
        "Cache Performance:",
        f"  Hit Rate: {metrics.cache_hit_rate * 100:.1f}% "
        f"({metrics.cache_hits} hits, {metrics.cache_misses} misses)",
    ]
    for name, counts in sorted(metrics.cache_by_name.items()):
        lookups = counts["hits"] + counts["misses"]
        rate = counts["hits"] / lookups * 100 if lookups else 0.0
        lines.append(f"    {name}: {rate:.1f}% ({counts['hits']} hits, {counts['misses']} misses)")
    return lines


def _api_lines(metrics: Any) -> list[str]:
    cost = f"  Est. Cost: ${metrics.estimated_api_cost:.4f}"
    notes = []
    if metrics.table_priced_api_calls:
        notes.append(f"{_plural(metrics.table_priced_api_calls, 'call')} est. from the "
                     "built-in price table; the server prices them")
    if metrics.unpriced_api_calls:
        notes.append(f"{_plural(metrics.unpriced_api_calls, 'call')} not priced here")
    if notes:
        cost += f" ({'; '.join(notes)})"
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


def render(metrics: Any) -> str:
    """The report of a ``PerformanceMetrics``."""
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
    lines += [f"  {op.operation_name}: {op.duration_seconds:.2f}s" for op in slowest] or [
        "  none"
    ]

    threshold = metrics.bottleneck_threshold * 100
    lines.append(f"Bottleneck Warnings (self time above {threshold:g}% of the session):")
    lines += [f"  {warning}" for warning in metrics.bottleneck_warnings] or ["  none"]
    lines += _export_line()
    return "\n".join(lines)
