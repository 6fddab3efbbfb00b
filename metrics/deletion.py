"""Deleting sessions, with their rows.

Operations and API calls point at their session without a database constraint (one
check per row at every ingest commit was the largest cost left in its transaction), so
this is the rule that keeps them from outliving it: a session is deleted only under its
row lock. Ingest writes a session's rows holding that same lock, so a merge in flight
either commits first, and its rows are deleted with the session, or waits, and then
finds no session and creates it anew.
"""

from django.db import transaction
from django.db.models import QuerySet

from metrics.episode_runs import refresh_latest_runs
from metrics.models import Session


def delete_sessions(sessions: QuerySet[Session]) -> int:
    """Delete ``sessions`` and everything that belongs to them; how many sessions went."""
    with transaction.atomic():
        # In key order, so two deletions of overlapping sets take turns instead of deadlocking.
        locked = dict(sessions.select_for_update().order_by("pk")
                      .values_list("pk", "episode_id"))
        if not locked:
            return 0
        _, by_model = Session.objects.filter(pk__in=locked).delete()
        refresh_latest_runs(locked.values())
    return by_model.get(Session._meta.label, 0)
