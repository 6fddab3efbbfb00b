"""Cost and time per scene and per dialogue line, and peak memory in MB: the units a
producer budgets in, on the pages and in budgets alike.

From the session's counters (``scenes_generated``, ``dialogue_lines_generated``, which the
generator records); a session without them has no such figure (None, shown as "—"), and
an incomplete cost (unpriced calls) gives an incomplete cost per unit, said so beside it.
"""

from decimal import Decimal

from metrics.models import Session

SCENES = "scenes_generated"
DIALOGUE_LINES = "dialogue_lines_generated"
BYTES_PER_MB = 1_000_000


def per_unit(session: Session) -> dict[str, float | None]:
    scenes = _count(session, SCENES)
    lines = _count(session, DIALOGUE_LINES)
    cost = float(session.cost_usd) if isinstance(session.cost_usd, Decimal | int | float) \
        else None
    return {
        "scenes": scenes,
        "dialogue_lines": lines,
        "cost_per_scene_usd": _share(cost, scenes),
        "seconds_per_scene": _share(session.duration_s, scenes),
        "cost_per_line_usd": _share(cost, lines),
        "seconds_per_line": _share(session.duration_s, lines),
    }


def megabytes(size_bytes: int | None) -> float | None:
    """Bytes as MB (1,000,000 bytes), the unit peak memory is shown and budgeted in."""
    return None if size_bytes is None else size_bytes / BYTES_PER_MB


def _count(session: Session, name: str) -> float | None:
    value = (session.counters or {}).get(name)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _share(total: float | None, count: float | None) -> float | None:
    return total / count if total is not None and count else None
