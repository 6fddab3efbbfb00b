"""Calls that could not be priced, counted next to every cost the pages show.

A model with no price valid at the call's time leaves the call's cost null; the session's
cost is then the sum of the priced calls only. Pages show that count beside the cost
("+ 3 unpriced") so an incomplete total never reads as the whole cost, nor as $0.

The counts are read from the sessions' cost lines, which analysis writes from the calls and
retention keeps, so a session whose calls aged out still says which of its cost is missing.
"""

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from metrics.models import CostLine, Session


def with_unpriced_calls(sessions: QuerySet[Session]) -> QuerySet[Session]:
    """Each session annotated with ``unpriced_calls``: one correlated sum each."""
    count = (
        CostLine.objects.filter(session=OuterRef("pk"))
        .order_by().values("session").annotate(n=Sum("unpriced_calls")).values("n")
    )
    return sessions.annotate(
        unpriced_calls=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)))


def unpriced_calls_in(sessions: QuerySet[Session]) -> int:
    # Only the lines with unpriced calls (the rest add 0): their partial index answers.
    lines = CostLine.objects.filter(session__in=sessions.values("pk"), unpriced_calls__gt=0)
    return lines.aggregate(n=Coalesce(Sum("unpriced_calls"), Value(0)))["n"]
