"""Two sessions side by side (two takes of one episode, say): their figures, their units
and each operation's self time."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Sum

from metrics.dashboard.unpriced import with_unpriced_calls
from metrics.models import OperationStat, Project, Session
from metrics.producer_units import per_unit

MAX_NAMES = 15


@dataclass
class SessionComparison:
    sessions: list[Session]
    units: dict[str, dict] = field(default_factory=dict)
    self_time: dict[str, dict[str, float]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


def compare_sessions(project: Project, external_ids: list[str]) -> SessionComparison:
    found = {s.external_id: s for s in with_unpriced_calls(
        Session.objects.filter(project=project, external_id__in=external_ids)
    ).select_related("episode")}
    sessions = [found[i] for i in external_ids if i in found]
    comparison = SessionComparison(sessions=sessions,
                                   units={s.external_id: per_unit(s) for s in sessions})
    by_pk = {s.pk: s.external_id for s in sessions}
    rows = (OperationStat.objects.filter(session_id__in=list(by_pk))
            .values("session_id", "name").annotate(self_s=Sum("self_time_s")))
    largest: dict[str, float] = defaultdict(float)
    for row in rows:
        comparison.self_time.setdefault(by_pk[row["session_id"]], {})[row["name"]] = \
            row["self_s"]
        largest[row["name"]] = max(largest[row["name"]], row["self_s"] or 0)
    comparison.names = sorted(largest, key=lambda n: (-largest[n], n))[:MAX_NAMES]
    return comparison
