"""summary.txt of a large or pruned session, from its stored figures, streamed.

The SDK's summary walks every operation; for a session of hundreds of thousands that
runs past a worker's timeout, and for a pruned one the operations are gone. This text
has the SDK summary's sections, read from the session's totals and its per-name figures
(OperationStat: one row per operation name, however many operations), and its slowest
operations from the (session, duration) index, so its cost does not grow with the rows.
"""

from collections.abc import Iterator

from django.conf import settings

from metrics.models import Session
from metrics.selectors import slowest_operations

RULE = "=" * 60


def stored_summary_lines(session: Session) -> Iterator[str]:
    yield f"Performance Summary (Session: {session.external_id})\n{RULE}\n"
    duration = f"{session.duration_s:.2f}s" if session.duration_s is not None else "unknown"
    yield f"Total Duration: {duration}\n"
    yield from _cache_lines(session)
    yield from _api_lines(session)
    yield f"Operations: {session.operations_count:,}\n"
    yield from _slowest_lines(session)
    yield from _bottleneck_lines(session)
    if session.detail_pruned_at is not None:
        yield (f"(Operations and API calls aged out on {session.detail_pruned_at:%Y-%m-%d}: "
               "figures above are those analysis kept.)\n")


def _cache_lines(session: Session) -> Iterator[str]:
    yield "Cache Performance:\n"
    if session.cache_hit_rate is None:
        yield "  Hit Rate: unknown (no lookups)\n"
        return
    yield (f"  Hit Rate: {session.cache_hit_rate:.1%} ({session.cache_hits} hits, "
           f"{session.cache_misses} misses)\n")


def _api_lines(session: Session) -> Iterator[str]:
    yield "API Usage:\n"
    yield f"  Calls: {session.api_calls_count:,} (Errors: {session.api_errors_count:,})\n"
    yield f"  Tokens: {session.total_tokens:,}\n"
    yield f"  Est. Cost: ${session.cost_usd:.4f}\n"


def _slowest_lines(session: Session) -> Iterator[str]:
    rows = list(slowest_operations(session)) if session.detail_pruned_at is None else []
    if rows:
        yield "Slowest Operations:\n"
        for row in rows:
            yield f"  {row['name']}: {row['duration_s']:.2f}s\n"


def _bottleneck_lines(session: Session) -> Iterator[str]:
    stats = session.operation_stats.filter(is_bottleneck=True).order_by("-share", "name")
    threshold = f"{settings.BOTTLENECK_THRESHOLD:.0%}"
    lines = [f"  {s.name}: {s.self_time_s:.2f}s self time ({s.share:.1%} of session) in "
             f"{s.occurrences} calls\n" for s in stats]
    if lines:
        yield f"Bottleneck Warnings (self time above {threshold} of the session):\n"
        yield from lines
