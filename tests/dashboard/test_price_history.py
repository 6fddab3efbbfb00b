"""Why a cost moved: the session page and the costs page show each repricing.

Hand calculation: one call of 1,000,000 prompt tokens and no output, so its cost is the
input price in USD per million tokens: $2 under the first price, $5 under the new one.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from metrics.models import ModelPrice
from tests.dashboard.world import send
from tests.factories import api_call, session_payload

pytestmark = pytest.mark.django_db

STARTED = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)


def price(input_usd: str, valid_from: datetime) -> ModelPrice:
    return ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal(input_usd),
        output_per_mtok=Decimal(10), valid_from=valid_from, source="test sheet")


@pytest.fixture
def repriced(api, django_capture_on_commit_callbacks):
    price("2", STARTED - timedelta(days=30))
    call = api_call("c1", provider="acme", model="writer-1", prompt_tokens=1_000_000,
                    completion_tokens=0, at_s=3600)
    payload = session_payload(api_calls=[call], duration_s=7200)
    payload["session"]["started_at"] = STARTED.isoformat()
    payload["api_calls"][0]["at"] = (STARTED + timedelta(hours=1)).isoformat()
    session = send(api, payload)
    assert session.cost_usd == Decimal(2)
    with django_capture_on_commit_callbacks(execute=True):
        price("5", datetime(2026, 11, 12, 9, 30, tzinfo=UTC))
    session.refresh_from_db()
    assert session.cost_usd == Decimal(5)
    return session


def test_the_session_page_says_what_it_cost_before_and_since_the_new_price(viewer, repriced):
    content = viewer.get(f"/sessions/{repriced.external_id}/").content.decode()

    assert "Priced $2.0000 on " in content
    assert "; $5.0000 since the 12 Nov 2026 price of writer-1 (repriced " in content


def test_the_costs_page_lists_the_change_with_what_it_did_to_the_projects_costs(
        viewer, repriced):
    response = viewer.get("/costs/")
    [added] = response.context["price_changes"]

    assert (added.change.kind, added.sessions) == ("added", 1)
    assert added.what == "input $5, output $10 per million tokens"
    assert (added.cost_before_usd, added.cost_after_usd, added.cost_delta_usd) == (
        Decimal(2), Decimal(5), Decimal(3))
    content = response.content.decode()
    assert "+$3.0000" in content
    # The first price arrived before the session: it repriced nothing of this project.
    assert response.context["other_price_changes"] == 1
    assert "1 other change repriced none of them" in content


def test_what_if_at_each_calls_time_is_offered_and_kept_in_the_form(viewer, repriced):
    response = viewer.get("/costs/?whatif_episodes=ep001&whatif_model=acme/writer-1"
                          "&whatif_prices=at_call")

    [row] = response.context["what_if"]["rows"]
    assert row.what_if_cost_usd == Decimal(5)  # the price valid at 10:00 is the new one
    assert '<option value="at_call" selected>' in response.content.decode()

