"""Each episode's latest run, kept on the episode whenever one of its runs changes.

The episodes table ranks a season's episodes by their take (the accepted run, else the
latest completed one). Finding the latest completed run among a period's runs reads every
run of the period, ten times more with every tenfold season; kept on the episode, a period
that ends now reads one row per episode instead (``dashboard.episode_order``).

Every writer of a run's episode, status or start refreshes the episode after its change.
The admin's edit and move, deletion and the OTLP merge of a trace call ``refresh_latest_runs``
in their transaction. Ingest calls ``refresh_latest_runs_now`` once its transaction has
committed: the row lock on the episode is then held for one UPDATE, not through the
commit of a thousand rows, so the runs of one episode stored at once do not queue on it.
Analysis refreshes the episode again the same way, so an ingest that died between its
commit and the refresh leaves the episode right once the session is analysed (the sweep
analyses any session left behind).

The episode's row lock is taken first, so the figures are read in a statement that sees
every run committed before it: two refreshes of one episode take turns, and the second
sees the first's run.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery

from metrics.models import Episode, Session


def refresh_latest_runs(episode_ids: Iterable[int | None]) -> None:
    """Recompute ``latest_run_at`` and ``latest_completed_session`` of these episodes."""
    ids = sorted({pk for pk in episode_ids if pk is not None})
    if not ids:
        return
    # In key order, so writers refreshing overlapping episodes take turns, never deadlock.
    # FOR NO KEY UPDATE: a session stored meanwhile (its foreign key takes FOR KEY SHARE on
    # its episode) is not held up by a refresh.
    list(Episode.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    _refresh(Episode.objects.filter(pk__in=ids))


def refresh_latest_runs_now(episode_ids: Iterable[int | None]) -> None:
    """``refresh_latest_runs`` in a transaction of its own (after the writer's commit).

    On PostgreSQL its commit does not wait for the disk: what it writes is derived from
    the runs, and if a crash loses it the next analysis of the session writes it again."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        refresh_latest_runs(episode_ids)


def refresh_all() -> int:
    """Recompute every episode's latest runs (after a bulk load); how many episodes."""
    return _refresh(Episode.objects.all())


def _refresh(episodes) -> int:
    # By project too: the index session_episode_take then gives the latest run (and
    # the latest completed one) in its order, without sorting runs that began together.
    runs = Session.objects.filter(
        project_id=OuterRef("project_id"), episode_id=OuterRef("pk"),
    ).order_by("-started_at", "-pk")
    return episodes.update(
        latest_run_at=Subquery(runs.values("started_at")[:1]),
        latest_completed_session=Subquery(
            runs.filter(status=Session.Status.COMPLETED).values("pk")[:1]),
    )
