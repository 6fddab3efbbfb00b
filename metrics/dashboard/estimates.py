"""Running sessions: how far along they are, and when they should finish.

The expected duration of a running session is the median duration of its workflow's most
recent completed sessions in the same project; a workflow that never completed a session
has no estimate (we do not guess from other workflows, whose runs can differ tenfold).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from metrics.dashboard.quantiles import median
from metrics.models import Project, Session

# Recent runs say more about the next one than last year's did; fifty is enough for a
# stable median and keeps the query bounded.
RECENT_RUNS = 50


@dataclass(frozen=True)
class Progress:
    session: Session
    elapsed_s: float
    expected_s: float | None  # median of the workflow's recent completed runs
    based_on: int  # how many runs the estimate comes from

    @property
    def expected_finish(self) -> datetime | None:
        if self.expected_s is None:
            return None
        return self.session.started_at + timedelta(seconds=self.expected_s)

    @property
    def percent(self) -> int | None:
        """Elapsed over expected, capped at 99 while the session still runs."""
        if not self.expected_s:
            return None
        return min(99, int(self.elapsed_s / self.expected_s * 100))

    @property
    def overdue(self) -> bool:
        return self.expected_s is not None and self.elapsed_s > self.expected_s

    @property
    def remaining_s(self) -> float | None:
        if self.expected_s is None:
            return None
        return max(0.0, self.expected_s - self.elapsed_s)


def expected_durations(
    *, project: Project, workflows: Iterable[str]
) -> dict[str, tuple[float, int]]:
    """``{workflow: (median duration of its recent completed runs, runs)}``.

    One indexed, limited query per workflow (the running sessions name a handful), so the
    cost does not depend on how many sessions the project holds.
    """
    result = {}
    for workflow in sorted(set(workflows)):
        durations = list(
            Session.objects.filter(
                project=project, workflow=workflow, status=Session.Status.COMPLETED,
                duration_s__isnull=False,
            ).order_by("-started_at", "-pk").values_list("duration_s", flat=True)[:RECENT_RUNS]
        )
        if durations:
            result[workflow] = (median(durations), len(durations))
    return result


def progress_of(
    sessions: Iterable[Session], *, project: Project, now: datetime | None = None
) -> list[Progress]:
    """Progress of running sessions: one query per workflow among them."""
    sessions = list(sessions)
    now = now or timezone.now()
    expected = expected_durations(project=project, workflows={s.workflow for s in sessions})
    result = []
    for session in sessions:
        median_s, runs = expected.get(session.workflow, (None, 0))
        elapsed = max(0.0, (now - session.started_at).total_seconds())
        result.append(Progress(session, elapsed, median_s, runs))
    return result
