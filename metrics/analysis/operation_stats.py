"""Per-name operation figures of one session: self time, share, bottlenecks.

Self time is an operation's interval minus its children's, so a wrapper is not blamed for
the work it contains; per name the self intervals are unioned, so parallel operations count
for the wall time they cover, not the sum of their durations. A name's share is its self
time over the session's wall time (``ended_at - started_at``; for a running session, up to
its latest finished operation), so idle time between operations counts too: a 1 s step of a
10 s session is 10%. The SDK's summary follows the same rule (docs/architecture.md); the two
are held together by one table of cases (tests/bottleneck_cases.py), not by imports.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from metrics.analysis import intervals


@dataclass(frozen=True, slots=True)
class TimedOperation:
    id: str
    parent_id: str | None
    name: str
    started_at: datetime
    duration_s: float
    success: bool | None = True
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass(frozen=True)
class NameStat:
    name: str
    occurrences: int
    failures: int
    total_duration_s: float
    self_time_s: float
    share: float
    is_bottleneck: bool
    cache_hits: int
    cache_misses: int


def wall_time_s(
    operations: Iterable[TimedOperation], *, started_at: datetime, ended_at: datetime | None
) -> float:
    """The session's wall time; while it runs, up to the end of its latest operation."""
    if ended_at is not None:
        return (ended_at - started_at).total_seconds()
    ends = [_interval(op)[1] for op in operations]
    return max(ends, default=started_at.timestamp()) - started_at.timestamp()


def name_stats(
    operations: Iterable[TimedOperation], *, wall_time_s: float, threshold: float
) -> list[NameStat]:
    """Figures per operation name, largest self time first."""
    ops = list(operations)
    span = {op.id: _interval(op) for op in ops}
    children: dict[str, list[intervals.Interval]] = defaultdict(list)
    for op in ops:
        if op.parent_id in span:
            children[op.parent_id].append(span[op.id])

    by_name: dict[str, list[TimedOperation]] = defaultdict(list)
    self_pieces: dict[str, list[intervals.Interval]] = defaultdict(list)
    for op in ops:
        by_name[op.name].append(op)
        self_pieces[op.name].extend(intervals.subtract(span[op.id], children[op.id]))

    stats = []
    for name, named in by_name.items():
        self_time = intervals.length(self_pieces[name])
        share = self_time / wall_time_s if wall_time_s > 0 else 0.0
        stats.append(
            NameStat(
                name=name,
                occurrences=len(named),
                failures=sum(1 for op in named if op.success is False),
                total_duration_s=sum(op.duration_s for op in named),
                self_time_s=self_time,
                share=share,
                is_bottleneck=share > threshold,
                cache_hits=sum(op.cache_hits for op in named),
                cache_misses=sum(op.cache_misses for op in named),
            )
        )
    return sorted(stats, key=lambda s: (-s.self_time_s, s.name))


def _interval(op: TimedOperation) -> intervals.Interval:
    start = op.started_at.timestamp()
    return (start, start + op.duration_s)
