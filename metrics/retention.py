"""Retention: raw operations and API calls age out; a session's figures stay.

A session older than its project's retention period (``Project.retention_days``, else the
``RETENTION_DAYS`` setting; 0 keeps everything) loses its raw rows. What analysis made of
them stays: the session's totals, per-name figures (OperationStat), cost lines, findings,
budget checks, regressions and rollups, so every page and chart still works. Baseline and
pinned sessions are kept whole, and a session is only pruned once its latest merge has been
analyzed, so no figure is lost with the rows.

On PostgreSQL a past month whose sessions may all be pruned loses its partitions whole
(metrics.retention_months); the other months' rows go in bounded batches, one short
transaction each (a primary-key range of at most ``batch_size`` rows), so ingest never
waits on a long delete. The session is marked
(``detail_pruned_at``) before its rows go: a prune cut short leaves a marked session, which
analysis knows not to re-derive from the rows that remain.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from metrics import retention_months as months
from metrics.models import ApiCall, Operation, Project, Session

DEFAULT_BATCH_ROWS = 5000
SESSIONS_PER_PASS = 200

Progress = Callable[[str], None]


@dataclass
class PruneResult:
    sessions: int = 0
    operations: int = 0
    api_calls: int = 0
    per_project: dict[str, int] = field(default_factory=dict)


def retention_days(project: Project) -> int:
    if project.retention_days is not None:
        return project.retention_days
    return settings.RETENTION_DAYS


def prunable_sessions(project: Project, *, older_than_days: int, now: datetime):
    """The project's sessions whose raw rows may go: old, analyzed, not kept whole."""
    cutoff = now - timedelta(days=older_than_days)
    return (
        Session.objects.filter(project=project, started_at__lt=cutoff)
        .filter(detail_pruned_at__isnull=True, is_baseline=False, is_pinned=False)
        .filter(analyzed_at__isnull=False, analyzed_at__gte=F("merged_at"))
        .exclude(Q(operations_count=0) & Q(api_calls_count=0))
    )


def prune(
    *,
    older_than_days: int | None = None,
    project_slug: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Prune every project (or one); ``older_than_days`` overrides each project's period."""
    now = now or timezone.now()
    say = progress or (lambda _line: None)
    result = PruneResult()
    projects = Project.objects.order_by("pk")
    if project_slug is not None:
        projects = projects.filter(slug=project_slug)
    prunable = {}
    for project in projects:
        days = older_than_days if older_than_days is not None else retention_days(project)
        if days <= 0:
            say(f"{project.slug}: retention 0, everything is kept")
            continue
        prunable[project] = (days, prunable_sessions(project, older_than_days=days, now=now))
    dropped = months.prune_whole_months(
        [sessions for _days, sessions in prunable.values()], dry_run=dry_run, say=say, now=now)
    for month in dropped:
        result.operations += month.operations
        result.api_calls += month.api_calls
        for slug, count in month.sessions_by_project.items():
            result.sessions += count
            result.per_project[slug] = result.per_project.get(slug, 0) + count
    for project, (days, sessions) in prunable.items():
        rest = sessions.exclude(months.in_any(dropped))  # a dry run's months are not marked
        _prune_project(project, rest, days, dry_run, batch_size, say, result, now)
    return result


def _prune_project(project, sessions, days, dry_run, batch_size, say, result, now) -> None:
    if dry_run:
        counts = _counts(sessions)
        say(f"{project.slug}: would prune {counts[0]} sessions older than {days} days "
            f"({counts[1]} operations, {counts[2]} API calls)")
        _add(result, project, *counts)
        return
    for pks in _session_chunks(sessions):
        Session.objects.filter(pk__in=pks).update(detail_pruned_at=now)
        calls = delete_in_batches(ApiCall.objects.filter(session_id__in=pks), batch_size)
        ops = delete_operations_in_batches(pks, batch_size)
        _add(result, project, len(pks), ops, calls)
        say(f"{project.slug}: pruned {result.per_project[project.slug]} sessions so far "
            f"(+{len(pks)}: {ops} operations, {calls} API calls)")


def _counts(sessions) -> tuple[int, int, int]:
    pks = list(sessions.values_list("pk", flat=True))
    return (
        len(pks),
        Operation.objects.filter(session_id__in=pks).count(),
        ApiCall.objects.filter(session_id__in=pks).count(),
    )


def _add(result: PruneResult, project: Project, sessions: int, ops: int, calls: int) -> None:
    result.sessions += sessions
    result.operations += ops
    result.api_calls += calls
    result.per_project[project.slug] = result.per_project.get(project.slug, 0) + sessions


def _session_chunks(sessions) -> Iterator[list[int]]:
    """Chunks of session keys, re-read each time: the marked ones drop out of the query."""
    while True:
        pks = list(sessions.order_by("pk").values_list("pk", flat=True)[:SESSIONS_PER_PASS])
        if not pks:
            return
        yield pks


def _batches(rows, batch_size: int) -> Iterator[tuple[int, int]]:
    """Primary-key ranges of at most ``batch_size`` of ``rows``, lowest first."""
    low = 0
    while True:
        keys = list(
            rows.filter(pk__gt=low).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not keys:
            return
        yield keys[0], keys[-1]
        low = keys[-1]


def delete_in_batches(rows, batch_size: int) -> int:
    deleted = 0
    for low, high in _batches(rows, batch_size):
        with transaction.atomic():
            # _raw_delete: one DELETE, no per-row collection; the rows' dependants
            # (none for API calls) are handled by the caller.
            deleted += rows.filter(pk__gte=low, pk__lte=high)._raw_delete(rows.db)
    return deleted


def delete_operations_in_batches(session_pks: list[int], batch_size: int) -> int:
    """Delete operations range by range; links into a range are cut in the same transaction.

    An operation's children (and the session's calls, deleted first) may lie in a later
    range, so their links to it are set to null before it goes.
    """
    rows = Operation.objects.filter(session_id__in=session_pks)
    deleted = 0
    for low, high in _batches(rows, batch_size):
        with transaction.atomic():
            batch = rows.filter(pk__gte=low, pk__lte=high)
            Operation.objects.filter(
                session_id__in=session_pks, parent_id__gte=low, parent_id__lte=high
            ).update(parent=None)
            ApiCall.objects.filter(
                session_id__in=session_pks, operation_id__gte=low, operation_id__lte=high
            ).update(operation=None)
            deleted += batch._raw_delete(batch.db)
    return deleted
