"""Each episode's latest run, kept on the episode whenever one of its runs changes.

The episodes table ranks a season's episodes by their take (the accepted run, else the
latest completed one). Finding the latest completed run among a period's runs reads every
run of the period, ten times more with every tenfold season; kept on the episode, a period
that ends now reads one row per episode instead (``dashboard.episode_order``).

Every writer of a run's episode, status or start calls ``refresh_latest_runs`` in its
transaction, after its change: ingest, the admin's edit and move, and deletion. The
episode's row lock is taken first, so the figures are read in a statement that sees every
run committed before it: two runs of one episode stored at once take turns here, and the
second sees the first.
"""

from collections.abc import Iterable

from django.db.models import OuterRef, Subquery

from metrics.models import Episode, Session


def refresh_latest_runs(episode_ids: Iterable[int | None]) -> None:
    """Recompute ``latest_run_at`` and ``latest_completed_session`` of these episodes."""
    ids = sorted({pk for pk in episode_ids if pk is not None})
    if not ids:
        return
    # In key order, so two writers refreshing overlapping episodes take turns instead of deadlocking.
    list(Episode.objects.select_for_update().filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    _refresh(Episode.objects.filter(pk__in=ids))


def refresh_all() -> int:
    """Recompute every episode's latest runs (after a bulk load); how many episodes."""
    return _refresh(Episode.objects.all())


def _refresh(episodes) -> int:
    runs = Session.objects.filter(episode_id=OuterRef("pk")).order_by("-started_at", "-pk")
    return episodes.update(
        latest_run_at=Subquery(runs.values("started_at")[:1]),
        latest_completed_session=Subquery(
            runs.filter(status=Session.Status.COMPLETED).values("pk")[:1]),
    )
