"""Per-name operation figures of one session: self time, share, bottlenecks.

Self time is an operation's interval minus its children's, so a wrapper is not blamed for
the work it contains; per name the self intervals are unioned, so parallel operations count
for the wall time they cover, not the sum of their durations. Measured time is the wall
time covered by the root operations. Same rule as the SDK's summary.
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


def name_stats(operations: Iterable[TimedOperation], *, threshold: float) -> list[NameStat]:
    """Figures per operation name, largest self time first."""
    ops = list(operations)
    span = {op.id: _interval(op) for op in ops}
    children: dict[str, list[intervals.Interval]] = defaultdict(list)
    for op in ops:
        if op.parent_id in span:
            children[op.parent_id].append(span[op.id])
    measured = intervals.length(span[op.id] for op in ops if op.parent_id not in span)

    by_name: dict[str, list[TimedOperation]] = defaultdict(list)
    self_pieces: dict[str, list[intervals.Interval]] = defaultdict(list)
    for op in ops:
        by_name[op.name].append(op)
        self_pieces[op.name].extend(intervals.subtract(span[op.id], children[op.id]))

    stats = []
    for name, named in by_name.items():
        self_time = intervals.length(self_pieces[name])
        share = self_time / measured if measured > 0 else 0.0
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
