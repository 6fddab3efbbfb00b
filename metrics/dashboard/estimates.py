"""Running sessions: how far along they are, and when they should finish.

The work a run does is its operations: a running session that finished 12 of the 40
operations its workflow's recent completed runs had is 30% done, whatever the clock says.
Its expected finish is now plus the work left at the past runs' pace: ``(1 - done) *
median past duration``; the middle half of the past durations gives the range it says it
is sure of, and fewer than ``FEW_RUNS`` past runs make it say it is not sure. A workflow
that never completed a session has no estimate (we do not guess from other workflows,
whose runs can differ tenfold).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from metrics.dashboard.quantiles import median, nearest_rank
from metrics.models import Operation, Project, Session

# Recent runs say more about the next one than last year's did; fifty is enough for a
# stable median and keeps the query bounded.
RECENT_RUNS = 50
FEW_RUNS = 5


@dataclass(frozen=True)
class PastRuns:
    median_s: float
    low_s: float  # 25th percentile of the past durations
    high_s: float  # 75th percentile
    median_operations: float
    runs: int


@dataclass(frozen=True)
class Progress:
    session: Session
    elapsed_s: float
    past: PastRuns | None
    operations_done: int = 0  # finished operations so far

    @property
    def based_on(self) -> int:
        return self.past.runs if self.past else 0

    @property
    def done(self) -> float | None:
        """Share of the work done: finished operations over the past runs' median count."""
        if self.past is None:
            return None
        if not self.past.median_operations:
            return min(1.0, self.elapsed_s / self.past.median_s) if self.past.median_s else None
        return min(1.0, self.operations_done / self.past.median_operations)

    @property
    def remaining_s(self) -> float | None:
        if self.done is None:
            return None
        return (1 - self.done) * self.past.median_s

    @property
    def expected_s(self) -> float | None:
        remaining = self.remaining_s
        return None if remaining is None else self.elapsed_s + remaining

    @property
    def expected_finish(self) -> datetime | None:
        if self.expected_s is None:
            return None
        return self.session.started_at + timedelta(seconds=self.expected_s)

    @property
    def finish_range(self) -> tuple[datetime, datetime] | None:
        """Between these two, as the middle half of the past runs' durations says."""
        if self.done is None:
            return None
        left = 1 - self.done
        start = self.session.started_at + timedelta(seconds=self.elapsed_s)
        return (start + timedelta(seconds=left * self.past.low_s),
                start + timedelta(seconds=left * self.past.high_s))

    @property
    def sure(self) -> bool:
        return self.based_on >= FEW_RUNS

    @property
    def percent(self) -> int | None:
        """Work done, capped at 99 while the session still runs."""
        if self.done is None:
            return None
        return min(99, int(self.done * 100))

    @property
    def overdue(self) -> bool:
        """Running longer than the past runs' median took."""
        return self.past is not None and self.elapsed_s > self.past.median_s


def past_runs(*, project: Project, workflows: Iterable[str]) -> dict[str, PastRuns]:
    """Each workflow's recent completed runs: one indexed, limited query per workflow."""
    result = {}
    for workflow in sorted(set(workflows)):
        rows = list(
            Session.objects.filter(
                project=project, workflow=workflow, status=Session.Status.COMPLETED,
                duration_s__isnull=False,
            ).order_by("-started_at", "-pk")
            .values_list("duration_s", "operations_count")[:RECENT_RUNS]
        )
        if rows:
            durations = [d for d, _ in rows]
            result[workflow] = PastRuns(
                median_s=median(durations), low_s=nearest_rank(durations, 0.25),
                high_s=nearest_rank(durations, 0.75),
                median_operations=median([n for _, n in rows]), runs=len(rows))
    return result


def finished_operations(sessions: list[Session]) -> dict[int, int]:
    return dict(
        Operation.objects.filter(session__in=sessions, duration_s__isnull=False)
        .values("session").annotate(n=Count("pk")).values_list("session", "n")
    )


def progress_of(
    sessions: Iterable[Session], *, project: Project, now: datetime | None = None
) -> list[Progress]:
    """Progress of running sessions: one query per workflow among them, one for the work."""
    sessions = list(sessions)
    if not sessions:
        return []
    now = now or timezone.now()
    past = past_runs(project=project, workflows={s.workflow for s in sessions})
    done = finished_operations(sessions)
    return [
        Progress(session, max(0.0, (now - session.started_at).total_seconds()),
                 past.get(session.workflow), done.get(session.pk, 0))
        for session in sessions
    ]
