"""Calls that could not be priced, counted next to every cost the pages show.

A model with no price valid at the call's time leaves the call's cost null; the session's
cost is then the sum of the priced calls only. Pages show that count beside the cost
("+ 3 unpriced") so an incomplete total never reads as the whole cost, nor as $0.

The count is the session's ``unpriced_calls_count``, which analysis writes with the cost
lines it counts (and retention keeps), so a session whose calls aged out still says which
of its cost is missing, and a period's count is summed in the same pass as its cost.
"""

from django.db.models import F, QuerySet

from metrics.models import Session


def with_unpriced_calls(sessions: QuerySet[Session]) -> QuerySet[Session]:
    """Each session annotated with ``unpriced_calls``, as the templates name it."""
    return sessions.annotate(unpriced_calls=F("unpriced_calls_count"))
