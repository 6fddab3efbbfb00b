"""Which snapshot of a session is newest: by the client's sequence, not by arrival.

A client sends a running session several times (partial flushes) and a retry from its
spool may deliver an older snapshot after a newer one. When both the stored session and
the incoming snapshot carry a ``sequence``, the lower one is older: it still adds the
operations and calls it carries, but its session-level figures and its running
operations' values do not replace newer ones. A snapshot without a sequence is ordered
by arrival (schema v1 has no other client clock for a snapshot), except that a finished
session never goes back to running.
"""

from ingest.schemas import SessionIn
from metrics.models import Session


def is_stale(session: Session, incoming: SessionIn) -> bool:
    """True if ``incoming`` is older than what ``session`` already holds."""
    if session.is_finished and incoming.status == Session.Status.RUNNING:
        return True
    if incoming.sequence is None or session.client_sequence is None:
        return False
    return incoming.sequence < session.client_sequence


def newest_sequence(session: Session, incoming: SessionIn) -> int | None:
    known = [s for s in (session.client_sequence, incoming.sequence) if s is not None]
    return max(known, default=None)
