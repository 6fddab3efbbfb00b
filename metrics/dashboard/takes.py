"""Each episode's accepted take: the one run whose figures stand for the episode.

An editor marks it on the session page; until then it is the episode's latest completed
run. Failed runs and cold runs (a cache that never hit) are counted beside it, not
averaged in: a broken run is not "the fastest and cheapest", and an episode's cost is
what a real run of it cost.
"""

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from metrics.models import Episode, Session

COLD = Q(status=Session.Status.COMPLETED, cache_hits=0, cache_misses__gt=0)


def take_ids(sessions: QuerySet[Session]) -> dict[int, int]:
    """``{episode id: session id}`` of each episode's take among these sessions."""
    marked = dict(
        Episode.objects.filter(accepted_session__in=sessions.order_by().values("pk"))
        .values_list("pk", "accepted_session_id")
    )
    latest = (
        sessions.filter(status=Session.Status.COMPLETED, episode_id__isnull=False)
        .exclude(episode_id__in=list(marked))
        .annotate(rank=Window(RowNumber(), partition_by=[F("episode_id")],
                              order_by=[F("started_at").desc(), F("pk").desc()]))
        .filter(rank=1).values_list("episode_id", "pk")
    )
    return {**dict(latest), **marked}


def is_take(ids: dict[int, int]) -> Q:
    return Q(pk__in=list(ids.values()))


def accept(session: Session) -> None:
    """Mark the session as its episode's accepted take."""
    Episode.objects.filter(pk=session.episode_id).update(accepted_session=session)


def take_of(session: Session) -> dict | None:
    """Where this run stands: its episode's accepted take or not, and whether chosen."""
    if session.episode_id is None:
        return None
    episode = session.episode
    take = take_ids(Session.objects.filter(episode_id=episode.pk)).get(episode.pk)
    return {"is_take": take == session.pk, "marked": episode.accepted_session_id is not None,
            "take_pk": take}
