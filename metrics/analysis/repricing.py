"""Repricing with its history: a price row added, edited or deleted, and what it did.

A change is recorded as a PriceChange (the row's prices and valid-from before and after).
Every session with server-priced calls of that model from the change's ``affects_from``
on is analyzed again, and its cost before and after is kept as a SessionRepricing, so a
producer can see why last month's total moved. Sessions whose raw calls aged out
(retention) keep the cost they were priced at: there is nothing left to price again.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from metrics.analysis import analyze, pricing
from metrics.models import (
    PRICE_FIELDS,
    ModelPrice,
    PriceChange,
    Session,
    SessionRepricing,
)


def price_snapshot(price: ModelPrice) -> dict:
    """A row's valid-from and prices, as JSON: USD per million tokens, as decimal strings."""
    prices = {field: _decimal_text(getattr(price, field)) for field in PRICE_FIELDS}
    return {"valid_from": price.valid_from.astimezone(UTC).isoformat(), **prices}


def _decimal_text(value) -> str | None:
    """"2.000000" from the database and Decimal("2") in memory are the same price: "2"."""
    return None if value is None else format(Decimal(value).normalize(), "f")


def record_change(kind: str, price: ModelPrice, *, before: dict | None) -> PriceChange | None:
    """Record what happened to ``price``; None when an edit changed no price or date."""
    after = None if kind == PriceChange.Kind.DELETED else price_snapshot(price)
    if kind == PriceChange.Kind.CHANGED and before == after:
        return None
    moments = [datetime.fromisoformat(snapshot["valid_from"])
               for snapshot in (before, after) if snapshot]
    return PriceChange.objects.create(
        provider=price.provider, model=price.model, kind=kind,
        price=None if kind == PriceChange.Kind.DELETED else price,
        before=before, after=after, affects_from=min(moments),
    )


def affected_sessions(change: PriceChange) -> list[int]:
    """Sessions with server-priced calls the change may price differently, by id."""
    return sorted(pricing.sessions_to_reprice(
        provider=change.provider, model=change.model, since=change.affects_from))


def start(change: PriceChange) -> list[int]:
    """The sessions to reprice for ``change``, counted on it; finished at once if none."""
    pks = affected_sessions(change)
    change.sessions_affected = len(pks)
    change.repriced_at = None if pks else timezone.now()
    change.save(update_fields=["sessions_affected", "repriced_at"])
    return pks


def reprice_session(session: Session, change: PriceChange) -> bool:
    """Analyze ``session`` again, keeping its cost before and after; once per change.

    Call inside a transaction: the session's row stays locked from the first read of the
    old cost to the new one, so a concurrent analysis cannot slip in between.
    Returns False when this change already repriced this session (a redelivered task).
    """
    session = Session.objects.select_for_update(of=("self",)).get(pk=session.pk)
    if SessionRepricing.objects.filter(session=session, change=change).exists():
        return False
    cost_before, unpriced_before = session.cost_usd, _unpriced_calls(session)
    analyze.analyze_session(session)
    session.refresh_from_db(fields=["cost_usd"])
    SessionRepricing.objects.create(
        session=session, change=change, cost_before_usd=cost_before,
        cost_after_usd=session.cost_usd, unpriced_before=unpriced_before,
        unpriced_after=_unpriced_calls(session),
    )
    return True


def skip(change_pk: int) -> None:
    """Count a session deleted before its repricing ran as done for ``change``."""
    PriceChange.objects.filter(pk=change_pk).update(sessions_skipped=F("sessions_skipped") + 1)


def finish_if_done(change_pk: int) -> None:
    """Mark the change repriced once each of its sessions was repriced or skipped."""
    with transaction.atomic():
        change = PriceChange.objects.select_for_update().filter(pk=change_pk).first()
        if change is None or change.repriced_at is not None or change.sessions_affected is None:
            return
        if change.repricings.count() + change.sessions_skipped >= change.sessions_affected:
            change.repriced_at = timezone.now()
            change.save(update_fields=["repriced_at"])


def _unpriced_calls(session: Session) -> int:
    return session.cost_lines.aggregate(n=Sum("unpriced_calls"))["n"] or 0
