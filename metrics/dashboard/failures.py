"""Why a session failed: the operation where it broke, its error, and the calls that failed.

The session page opens with this for a failed session, so the reason is not left to a
chart's hover. The failed operation named is where the failure started: of the failed
operations, the one that ended first (its parents fail after it, with the same error).
"""

from dataclasses import dataclass

from metrics.models import ApiCall, Operation, Session

FAILED_CALLS_SHOWN = 20
ERROR_CHARS = 500


@dataclass(frozen=True)
class Failure:
    operation: str | None
    error: str
    failed_operations: int
    failed_calls: list[dict]
    failed_calls_total: int


def failure_of(session: Session) -> Failure | None:
    """None unless the session failed."""
    if session.status != Session.Status.FAILED:
        return None
    failed = Operation.objects.filter(session=session, success=False)
    first = failed.order_by("ended_at", "started_at", "pk").values("name", "error").first()
    calls = ApiCall.objects.filter(session=session, error=True)
    shown = list(
        calls.order_by("at", "pk")
        .values("provider", "model", "at", "error_message", "attempts",
                "operation__name")[:FAILED_CALLS_SHOWN]
    )
    for call in shown:
        call["error_message"] = (call["error_message"] or "")[:ERROR_CHARS]
    return Failure(
        operation=first["name"] if first else None,
        error=((first or {}).get("error") or session.notes or "")[:ERROR_CHARS],
        failed_operations=failed.count(),
        failed_calls=shown,
        failed_calls_total=calls.count() if len(shown) == FAILED_CALLS_SHOWN else len(shown),
    )
