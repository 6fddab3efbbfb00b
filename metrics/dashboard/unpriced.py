"""Calls that could not be priced, counted next to every cost the pages show.

A model with no price valid at the call's time leaves the call's cost null; the session's
cost is then the sum of the priced calls only. Pages show that count beside the cost
("+ 3 unpriced") so an incomplete total never reads as the whole cost, nor as $0.
"""

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from metrics.models import ApiCall, Session

UNPRICED = ApiCall.CostSource.UNPRICED


def with_unpriced_calls(sessions: QuerySet[Session]) -> QuerySet[Session]:
    """Each session annotated with ``unpriced_calls``: one correlated count each."""
    count = (
        ApiCall.objects.filter(session=OuterRef("pk"), cost_source=UNPRICED)
        .order_by().values("session").annotate(n=Count("pk")).values("n")
    )
    return sessions.annotate(
        unpriced_calls=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)))


def unpriced_calls_in(sessions: QuerySet[Session]) -> int:
    return ApiCall.objects.filter(session__in=sessions.values("pk"),
                                  cost_source=UNPRICED).count()
