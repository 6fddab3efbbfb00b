"""Page queries for repricing history: why a session's or a month's cost moved.

Read from the records metrics.analysis.repricing keeps (PriceChange, SessionRepricing).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum

from metrics.models import PRICE_FIELDS, PriceChange, Project, Session, SessionRepricing

RECENT_CHANGES = 20
SESSION_STEPS = 10

PRICE_LABELS = {
    "input_per_mtok": "input", "output_per_mtok": "output",
    "cached_input_per_mtok": "cached input", "cache_write_per_mtok": "cache write (5 min)",
    "cache_write_1h_per_mtok": "cache write (1 h)",
}


@dataclass(frozen=True)
class PricedStep:
    """What a session cost from ``since`` on, and the change that made it so (None: the
    first pricing, when the session arrived)."""

    cost_usd: Decimal
    unpriced_calls: int
    since: datetime
    change: PriceChange | None

    @property
    def price_valid_from(self) -> datetime | None:
        if self.change is None:
            return None
        side = self.change.after or self.change.before
        return datetime.fromisoformat(side["valid_from"])


def session_price_history(session: Session) -> list[PricedStep]:
    """The session's cost at first and after each repricing, oldest first; [] if never
    repriced. At most the last SESSION_STEPS repricings after the first pricing."""
    repricings = list(
        SessionRepricing.objects.filter(session=session).select_related("change")
        .order_by("-repriced_at", "-pk")[:SESSION_STEPS]
    )[::-1]
    if not repricings:
        return []
    first = repricings[0]
    steps = [PricedStep(first.cost_before_usd, first.unpriced_before, session.received_at, None)]
    steps += [PricedStep(r.cost_after_usd, r.unpriced_after, r.repriced_at, r.change)
              for r in repricings]
    return steps


@dataclass(frozen=True)
class ChangeRow:
    change: PriceChange
    what: str  # the prices that moved, in USD per million tokens
    sessions: int  # this project's sessions it repriced
    cost_before_usd: Decimal | None
    cost_after_usd: Decimal | None

    @property
    def cost_delta_usd(self) -> Decimal | None:
        if self.cost_before_usd is None or self.cost_after_usd is None:
            return None
        return self.cost_after_usd - self.cost_before_usd


def recent_price_changes(project: Project) -> list[ChangeRow]:
    """The latest price changes that repriced sessions of this project, each with what it
    did to them (sessions, cost before and after), newest first."""
    sums = list(
        SessionRepricing.objects.filter(session__project=project)
        .values("change").annotate(n=Count("pk"), before=Sum("cost_before_usd"),
                                   after=Sum("cost_after_usd"))
        .order_by("-change__changed_at", "-change")[:RECENT_CHANGES]
    )
    changes = PriceChange.objects.in_bulk([row["change"] for row in sums])
    return [ChangeRow(changes[row["change"]], describe_prices(changes[row["change"]]),
                      row["n"], row["before"], row["after"]) for row in sums]


def other_price_changes(project: Project) -> int:
    """Price changes that repriced none of this project's sessions."""
    touched = SessionRepricing.objects.filter(session__project=project).values("change")
    return PriceChange.objects.exclude(pk__in=touched).count()


def describe_prices(change: PriceChange) -> str:
    """What moved ("input $2 → $3"), or the prices added or deleted ("input $2,
    output $10"), per million tokens; and whether the valid-from moved."""
    before, after = change.before or {}, change.after or {}
    moved = False
    if change.kind == PriceChange.Kind.CHANGED:
        parts = [f"{PRICE_LABELS[f]} {_usd(before.get(f))} → {_usd(after.get(f))}"
                 for f in PRICE_FIELDS if before.get(f) != after.get(f)]
        moved = before.get("valid_from") != after.get("valid_from")
    else:
        shown = before if change.kind == PriceChange.Kind.DELETED else after
        parts = [f"{PRICE_LABELS[f]} {_usd(shown[f])}" for f in PRICE_FIELDS
                 if shown.get(f) is not None]
    text = ", ".join(parts) + " per million tokens" if parts else ""
    return "; ".join(filter(None, [text, "valid-from moved" if moved else ""]))


def _usd(text: str | None) -> str:
    return "none" if text is None else f"${text}"
