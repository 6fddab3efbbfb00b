"""The text summary the SDK prints, rebuilt from a stored session."""

from django.conf import settings

import perfmon
from metrics.models import Session
from metrics.payloads import session_payload

# Above this many operations the page links to the summary instead of building it inline:
# the SDK's summary walks every operation, which for a huge session takes seconds.
INLINE_OPERATIONS = 5_000


def session_summary(session: Session) -> str:
    """``get_summary()`` of the session as stored, with the server's prices.

    The export carries only client-sent costs (a server price is recomputed on import), so
    the server's cost of each call is put back before the SDK renders the summary.
    """
    payload = session_payload(session)
    costs = dict(session.api_calls.values_list("client_id", "cost_usd"))
    for call in payload["api_calls"]:
        cost = costs.get(call["id"])
        call["cost_usd"] = float(cost) if cost is not None else None
    return perfmon.summary_from_payload(
        payload, bottleneck_threshold=settings.BOTTLENECK_THRESHOLD
    )
