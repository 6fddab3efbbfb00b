"""Repricing keeps its history: each price change, and each session's cost before and after.

Hand calculation for every case: one call of 1,000,000 prompt tokens and no output, made
at T0 + 2 h, so its cost is the input price (USD per million tokens) valid at that time.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from metrics import tasks
from metrics.analysis import repricing
from metrics.analysis.analyze import analyze_session
from metrics.models import ModelPrice, PriceChange, Session, SessionRepricing
from tests.factories import T0, api_call, session_payload

pytestmark = pytest.mark.django_db

CALL_AT = T0 + timedelta(hours=2)


@pytest.fixture
def first_price(db) -> ModelPrice:
    return ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("10"), valid_from=T0 - timedelta(days=30),
        source="test price sheet")


@pytest.fixture
def session(api, first_price) -> Session:
    call = api_call("c1", provider="acme", model="writer-1", prompt_tokens=1_000_000,
                    completion_tokens=0, at_s=7200)
    api.post("/sessions", session_payload(api_calls=[call], duration_s=8000))
    stored = Session.objects.get()
    analyze_session(stored)
    stored.refresh_from_db()
    assert stored.cost_usd == Decimal("2")  # the first price, before any change
    return stored


@pytest.fixture
def changes(django_capture_on_commit_callbacks):
    """Run what a price change enqueues after its commit, as the eager default does."""
    def run(action):
        with django_capture_on_commit_callbacks(execute=True):
            result = action()
        return result
    return run


def latest_change() -> PriceChange:
    """The change a test made (the first price's own "added" change comes before it)."""
    return PriceChange.objects.order_by("pk").last()


def new_price(input_usd: str, valid_from) -> ModelPrice:
    return ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal(input_usd),
        output_per_mtok=Decimal("10"), valid_from=valid_from, source="new sheet")


def test_an_added_price_is_recorded_with_each_sessions_cost_before_and_after(
        session, changes):
    changes(lambda: new_price("5", T0 + timedelta(hours=1)))

    change = latest_change()
    assert (change.kind, change.provider, change.model) == ("added", "acme", "writer-1")
    assert change.before is None
    assert change.after["input_per_mtok"] == "5"
    assert change.affects_from == T0 + timedelta(hours=1)
    assert change.sessions_affected == 1 and change.repriced_at is not None
    [repriced] = SessionRepricing.objects.all()
    assert (repriced.session, repriced.cost_before_usd, repriced.cost_after_usd) == (
        session, Decimal("2"), Decimal("5"))


def test_an_edited_price_keeps_both_sides(session, first_price, changes):
    first_price.input_per_mtok = Decimal("3")
    changes(first_price.save)

    change = latest_change()
    assert change.kind == "changed"
    assert (change.before["input_per_mtok"], change.after["input_per_mtok"]) == (
        "2", "3")
    assert change.price == first_price
    repriced = SessionRepricing.objects.get()
    assert (repriced.cost_before_usd, repriced.cost_after_usd) == (Decimal("2"), Decimal("3"))


def test_a_price_moved_later_reprices_from_its_old_start(session, changes):
    later = changes(lambda: new_price("5", T0 + timedelta(hours=1)))
    assert Session.objects.get().cost_usd == Decimal("5")

    later.valid_from = T0 + timedelta(hours=3)  # now after the call: the first price again
    changes(later.save)

    moved = latest_change()
    assert moved.affects_from == T0 + timedelta(hours=1)
    assert moved.before["valid_from"] == (T0 + timedelta(hours=1)).isoformat()
    assert moved.after["valid_from"] == (T0 + timedelta(hours=3)).isoformat()
    assert [(r.cost_before_usd, r.cost_after_usd) for r in session.repricings.all()] == [
        (Decimal("2"), Decimal("5")), (Decimal("5"), Decimal("2"))]


def test_deleting_the_only_price_leaves_the_call_unpriced_and_says_so(
        session, first_price, changes):
    changes(first_price.delete)

    change = latest_change()
    assert (change.kind, change.price, change.after) == ("deleted", None, None)
    assert change.before["input_per_mtok"] == "2"
    repriced = SessionRepricing.objects.get()
    assert (repriced.cost_before_usd, repriced.unpriced_before) == (Decimal("2"), 0)
    assert (repriced.cost_after_usd, repriced.unpriced_after) == (Decimal("0"), 1)


def test_saving_a_price_unchanged_records_nothing(session, first_price, changes):
    changes(first_price.save)

    assert latest_change().kind == "added"  # the first price's own, nothing since
    assert not SessionRepricing.objects.exists()


def test_a_price_after_every_call_affects_no_session_and_is_done_at_once(session, changes):
    changes(lambda: new_price("5", T0 + timedelta(days=1)))

    change = latest_change()
    assert (change.sessions_affected, change.repriced_at is not None) == (0, True)
    assert Session.objects.get().cost_usd == Decimal("2")


def test_a_redelivered_repricing_task_records_the_session_once(session, changes):
    changes(lambda: new_price("5", T0 + timedelta(hours=1)))
    change = latest_change()

    assert tasks.reprice_session(session.pk, change.pk) is False

    assert SessionRepricing.objects.count() == 1


def test_client_priced_calls_are_not_repriced(api, first_price, changes):
    call = api_call("c1", provider="acme", model="writer-1", prompt_tokens=1_000_000,
                    completion_tokens=0, at_s=7200, cost_usd=0.75)
    api.post("/sessions", session_payload(api_calls=[call], duration_s=8000))
    analyze_session(Session.objects.get())

    changes(lambda: new_price("5", T0 + timedelta(hours=1)))

    assert latest_change().sessions_affected == 0
    assert Session.objects.get().cost_usd == Decimal("0.75")


def test_a_session_deleted_before_its_repricing_still_lets_the_change_finish(session):
    new_price("5", T0 + timedelta(hours=1))  # recorded; its repricing tasks not run here
    change = latest_change()
    assert repricing.start(change) == [session.pk]
    session_pk = session.pk
    session.delete()

    assert tasks.reprice_session(session_pk, change.pk) is False

    change.refresh_from_db()
    assert (change.sessions_affected, change.sessions_skipped) == (1, 1)
    assert change.repriced_at is not None
