"""The denormalised totals a session carries, recomputed from its rows by the database."""

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from metrics.models import ApiCall, Operation, Session

TOTAL_FIELDS = [
    "api_calls_count", "api_errors_count", "prompt_tokens", "completion_tokens",
    "total_tokens", "cost_usd", "operations_count",
]


def refresh_session_totals(session: Session) -> None:
    if session.detail_pruned_at is not None:
        return  # retention removed the rows: the totals are the record of what they held
    totals = ApiCall.objects.filter(session=session).aggregate(
        calls=Count("pk"),
        errors=Count("pk", filter=Q(error=True)),
        prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
        completion_tokens=Coalesce(Sum("completion_tokens"), 0),
        total_tokens=Coalesce(Sum("total_tokens"), 0),
        cost_usd=Sum("cost_usd"),
    )
    session.api_calls_count = totals["calls"]
    session.api_errors_count = totals["errors"]
    session.prompt_tokens = totals["prompt_tokens"]
    session.completion_tokens = totals["completion_tokens"]
    session.total_tokens = totals["total_tokens"]
    session.cost_usd = totals["cost_usd"] or 0
    session.operations_count = Operation.objects.filter(session=session).count()
    session.save(update_fields=TOTAL_FIELDS)
