"""A snapshot too large for one request arrives in parts; it finishes only when all have.

Every part carries the same session fields and sequence, and ``part`` says which of how
many it is. Until each part of the newest split snapshot has arrived, the session stays
running (its end time unset), so no page or budget takes a half-arrived session for a
finished one; the part that completes the set applies the final status. Parts of an older
snapshot are stale (ingest.merge_order) and change no session field.
"""

from ingest.schemas import SessionIn
from metrics.models import Session


def part_fields(stored: dict | None, incoming: SessionIn) -> dict:
    """Session fields this payload's part decides: the parts received, and while some are
    missing, a status held at running."""
    if incoming.part is None:
        return {"split_parts": None}
    same_split = bool(stored) and stored.get("sequence") == incoming.sequence and (
        stored.get("count") == incoming.part.count)
    received = set(stored["received"]) if same_split else set()
    received.add(incoming.part.index)
    fields: dict = {"split_parts": {"sequence": incoming.sequence, "count": incoming.part.count,
                                    "received": sorted(received)}}
    if len(received) < incoming.part.count and incoming.status != Session.Status.RUNNING:
        fields.update(status=Session.Status.RUNNING, ended_at=None, duration_s=None)
    return fields

