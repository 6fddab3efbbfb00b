"""Analysis of stored sessions. Pure computations take plain values; the functions that
touch the database read with ``values_list`` (no model objects) and write in one
transaction, so running them twice gives the same rows."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from metrics import intervals
from metrics.models import Bottleneck, Session


@dataclass(frozen=True)
class TimedOperation:
    id: str
    parent_id: str | None
    name: str
    started_at: datetime
    duration_s: float


@dataclass(frozen=True)
class BottleneckFinding:
    name: str
    self_time_s: float
    share: float
    occurrences: int


def find_bottlenecks(
    operations: Iterable[TimedOperation], *, threshold: float
) -> list[BottleneckFinding]:
    """Operation names whose self time exceeds ``threshold`` of the measured wall time.

    Self time is an operation's interval minus its children's, so a wrapper is not
    blamed for the work it contains; per name the self intervals are unioned, so
    parallel operations count for the wall time they cover, not the sum of their
    durations. Measured time is the wall time covered by the root operations.
    """
    ops = list(operations)
    span = {op.id: _interval(op) for op in ops}
    children: dict[str, list[intervals.Interval]] = defaultdict(list)
    for op in ops:
        if op.parent_id in span:
            children[op.parent_id].append(span[op.id])
    measured = intervals.length(span[op.id] for op in ops if op.parent_id not in span)
    if measured <= 0:
        return []

    self_intervals: dict[str, list[intervals.Interval]] = defaultdict(list)
    occurrences: dict[str, int] = defaultdict(int)
    for op in ops:
        self_intervals[op.name].extend(intervals.subtract(span[op.id], children[op.id]))
        occurrences[op.name] += 1

    findings = []
    for name, pieces in self_intervals.items():
        self_time = intervals.length(pieces)
        share = self_time / measured
        if share > threshold:
            findings.append(BottleneckFinding(name, self_time, share, occurrences[name]))
    return sorted(findings, key=lambda f: f.share, reverse=True)


def _interval(op: TimedOperation) -> intervals.Interval:
    start = op.started_at.timestamp()
    return (start, start + op.duration_s)


def timed_operations(session: Session) -> list[TimedOperation]:
    rows = session.operations.filter(duration_s__isnull=False).values_list(
        "client_id", "parent_client_id", "name", "started_at", "duration_s"
    )
    return [TimedOperation(*row) for row in rows.iterator(chunk_size=5000)]


def analyze_session(session: Session) -> None:
    """Recompute a session's bottlenecks and mark it analyzed. Idempotent."""
    started = timezone.now()
    findings = find_bottlenecks(
        timed_operations(session), threshold=settings.BOTTLENECK_THRESHOLD
    )
    with transaction.atomic():
        Bottleneck.objects.filter(session=session).delete()
        Bottleneck.objects.bulk_create(
            Bottleneck(
                session=session,
                name=f.name,
                self_time_s=f.self_time_s,
                share=f.share,
                occurrences=f.occurrences,
            )
            for f in findings
        )
        # analyzed_at records when this analysis began: a merge committed meanwhile has a
        # later merged_at, so the sweep will pick the session up again.
        Session.objects.filter(pk=session.pk).update(analyzed_at=started)
