"""Server-side pricing: the price valid at the call's time, each token kind priced apart."""

from datetime import timedelta
from decimal import Decimal

import pytest

from metrics.analysis.analyze import analyze_session
from metrics.analysis.pricing import what_if_cost
from metrics.models import ApiCall, EpisodeCost, Finding, ModelPrice, Project, Session
from tests.factories import T0, api_call, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def house_model(db):
    """A model with round prices, valid from before the test sessions."""
    return ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("10"), cached_input_per_mtok=Decimal("0.5"),
        cache_write_per_mtok=Decimal("3"), valid_from=T0 - timedelta(days=30),
        source="test price sheet",
    )


def writer_call(call_id: str, **kwargs):
    return api_call(call_id, provider="acme", model="writer-1", **kwargs)


def analyzed(api, payload) -> Session:
    api.post("/sessions", payload)
    session = Session.objects.get(external_id=payload["session"]["id"])
    analyze_session(session)
    session.refresh_from_db()
    return session


def test_each_token_kind_has_its_own_price(api, house_model):
    call = writer_call("c1", prompt_tokens=1_000_000, completion_tokens=100_000,
                       cached_tokens=200_000, cache_write_tokens=300_000)

    session = analyzed(api, session_payload(api_calls=[call]))

    # uncached input 500k × $2 + output 100k × $10 + cached 200k × $0.5 + written 300k × $3
    expected = Decimal("1.0") + Decimal("1.0") + Decimal("0.1") + Decimal("0.9")
    priced = ApiCall.objects.get()
    assert priced.cost_usd == expected
    assert priced.cost_source == "price_table"
    assert session.cost_usd == expected


def test_one_hour_cache_writes_have_their_own_price(api, house_model):
    house_model.cache_write_1h_per_mtok = Decimal("4")
    house_model.save()
    call = writer_call("c1", prompt_tokens=1_000_000, completion_tokens=100_000,
                       reasoning_tokens=40_000, cached_tokens=200_000,
                       cache_write_tokens=300_000, cache_write_1h_tokens=100_000)

    analyzed(api, session_payload(api_calls=[call]))

    # uncached input 500k × $2 + output 100k × $10 (reasoning is part of it, no extra)
    # + cached 200k × $0.5 + 5-minute writes 200k × $3 + 1-hour writes 100k × $4
    expected = Decimal("1.0") + Decimal("1.0") + Decimal("0.1") + Decimal("0.6") + Decimal("0.4")
    priced = ApiCall.objects.get()
    assert priced.cost_usd == expected
    assert (priced.reasoning_tokens, priced.cache_write_1h_tokens) == (40_000, 100_000)


def test_one_hour_writes_without_their_own_price_cost_the_five_minute_price(api, house_model):
    call = writer_call("c1", prompt_tokens=300_000, completion_tokens=0,
                       cache_write_tokens=300_000, cache_write_1h_tokens=100_000)

    analyzed(api, session_payload(api_calls=[call]))

    assert ApiCall.objects.get().cost_usd == Decimal("0.9")  # 300k written × $3


def test_what_if_prices_one_hour_writes_like_the_server(api, house_model, project):
    house_model.cache_write_1h_per_mtok = Decimal("4")
    house_model.save()
    call = writer_call("c1", prompt_tokens=1_000_000, completion_tokens=100_000,
                       cached_tokens=200_000, cache_write_tokens=300_000,
                       cache_write_1h_tokens=100_000)
    analyzed(api, session_payload(api_calls=[call]))

    (row,) = what_if_cost(project=project, episodes=["ep001"], provider="acme",
                          model="writer-1")

    assert row.what_if_cost_usd == row.actual_cost_usd == Decimal("3.1")


def test_the_price_valid_at_the_calls_time_is_used(api, house_model):
    ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal("4"),
        output_per_mtok=Decimal("20"), valid_from=T0 + timedelta(hours=1), source="increase",
    )
    before = writer_call("before", prompt_tokens=1_000_000, completion_tokens=0, at_s=60)
    after = writer_call("after", prompt_tokens=1_000_000, completion_tokens=0, at_s=7200)

    analyzed(api, session_payload(api_calls=[before, after], duration_s=8000))

    costs = dict(ApiCall.objects.values_list("client_id", "cost_usd"))
    assert costs == {"before": Decimal("2"), "after": Decimal("4")}


def test_a_client_cost_is_kept(api, house_model):
    analyzed(api, session_payload(api_calls=[writer_call("c1", cost_usd=0.42)]))

    call = ApiCall.objects.get()
    assert (call.cost_usd, call.cost_source) == (Decimal("0.42"), "client")


def test_a_model_without_a_price_is_unpriced_and_listed_not_zero(api, house_model):
    unknown = api_call("c1", provider="acme", model="mystery-9")
    known = writer_call("c2", prompt_tokens=1_000_000, completion_tokens=0)

    session = analyzed(api, session_payload(api_calls=[unknown, known]))

    call = ApiCall.objects.get(client_id="c1")
    assert call.cost_usd is None
    assert call.cost_source == "unpriced"
    finding = Finding.objects.get(session=session, kind="unpriced_calls")
    assert finding.evidence == {"calls_by_model": {"acme/mystery-9": 1}}
    assert api.get("/sessions/ep001_run1").json()["unpriced_calls"] == 1
    assert EpisodeCost.objects.get(model="mystery-9").unpriced_calls == 1


def test_pricing_twice_changes_nothing(api, house_model):
    session = analyzed(api, session_payload(api_calls=[writer_call("c1")]))
    first = list(ApiCall.objects.values_list("cost_usd", "cost_source"))

    analyze_session(session)

    assert list(ApiCall.objects.values_list("cost_usd", "cost_source")) == first


def test_a_new_price_row_reprices_affected_calls_and_rollups(
    api, house_model, django_capture_on_commit_callbacks
):
    call = writer_call("c1", prompt_tokens=1_000_000, completion_tokens=0, at_s=7200)
    session = analyzed(api, session_payload(api_calls=[call], duration_s=8000))
    assert session.cost_usd == Decimal("2")

    with django_capture_on_commit_callbacks(execute=True):
        ModelPrice.objects.create(
            provider="acme", model="writer-1", input_per_mtok=Decimal("5"),
            output_per_mtok=Decimal("20"), valid_from=T0 + timedelta(hours=1),
            source="new sheet",
        )

    session.refresh_from_db()
    assert session.cost_usd == Decimal("5")
    assert EpisodeCost.objects.get(model="writer-1").cost_usd == Decimal("5")


def test_whole_dollar_prices_price_a_few_tokens_exactly(api, db):
    # Stored as integers on SQLite, where integer by integer division used to give $0.
    ModelPrice.objects.create(provider="acme", model="round-1", input_per_mtok=Decimal(2),
                              output_per_mtok=Decimal(10), valid_from=T0 - timedelta(days=3),
                              source="test")
    call = api_call("c1", provider="acme", model="round-1", prompt_tokens=500,
                    completion_tokens=3)

    # By hand: 500 x $2 + 3 x $10 = $1030 per million tokens.
    assert analyzed(api, session_payload(api_calls=[call])).cost_usd == Decimal("0.00103")
    assert ApiCall.objects.get().cost_usd == Decimal("0.00103")


@pytest.mark.parametrize("answered_as", ["writer-1-2026-08-06", "writer-1-20260806"])
def test_a_dated_snapshot_takes_its_models_price(api, house_model, answered_as):
    call = api_call("c1", provider="acme", model=answered_as, prompt_tokens=1_000_000,
                    completion_tokens=0)
    session = analyzed(api, session_payload(api_calls=[call]))

    assert session.cost_usd == Decimal("2")  # writer-1's input price
    assert ApiCall.objects.get().cost_source == "price_table"


def test_a_snapshots_own_price_wins_over_its_models(api, house_model):
    ModelPrice.objects.create(provider="acme", model="writer-1-2026-08-06",
                              input_per_mtok=Decimal("3"), output_per_mtok=Decimal("10"),
                              valid_from=T0 - timedelta(days=30), source="test")
    call = api_call("c1", provider="acme", model="writer-1-2026-08-06",
                    prompt_tokens=1_000_000, completion_tokens=0)

    assert analyzed(api, session_payload(api_calls=[call])).cost_usd == Decimal("3")


def test_a_model_that_only_looks_dated_is_not_priced_as_another(api, house_model):
    call = api_call("c1", provider="acme", model="writer-1-mini", prompt_tokens=1_000_000,
                    completion_tokens=0)
    analyzed(api, session_payload(api_calls=[call]))

    assert ApiCall.objects.get().cost_source == "unpriced"


def test_a_new_model_price_reprices_its_dated_snapshots(
    api, house_model, django_capture_on_commit_callbacks
):
    call = api_call("c1", provider="acme", model="writer-1-20260806", prompt_tokens=1_000_000,
                    completion_tokens=0, at_s=7200)
    session = analyzed(api, session_payload(api_calls=[call], duration_s=8000))

    with django_capture_on_commit_callbacks(execute=True):
        ModelPrice.objects.create(provider="acme", model="writer-1", input_per_mtok=Decimal(5),
                                  output_per_mtok=Decimal(20), source="new sheet",
                                  valid_from=T0 + timedelta(hours=1))

    session.refresh_from_db()
    assert session.cost_usd == Decimal("5")


def test_what_if_prices_an_episode_with_another_models_prices(api, house_model):
    ModelPrice.objects.create(
        provider="acme", model="cheap-1", input_per_mtok=Decimal("0.2"),
        output_per_mtok=Decimal("1"), valid_from=T0 - timedelta(days=1), source="test",
    )
    calls = [writer_call("c1", prompt_tokens=1_000_000, completion_tokens=100_000)]
    analyzed(api, session_payload(api_calls=calls))

    [result] = what_if_cost(project=Project.objects.get(slug="default"), episodes=["ep001"],
                            provider="acme", model="cheap-1")

    assert result.episode == "ep001"
    assert result.actual_cost_usd == Decimal("3")
    assert result.what_if_cost_usd == Decimal("0.3")
    assert result.calls == 1


def test_what_if_at_each_calls_time_uses_the_price_valid_then(api, house_model):
    # cheap-1: no price before T0, $0.20 per million input tokens from T0, $0.40 from T0 + 2 h.
    for valid_from, input_usd in [(T0, "0.2"), (T0 + timedelta(hours=2), "0.4")]:
        ModelPrice.objects.create(provider="acme", model="cheap-1",
                                  input_per_mtok=Decimal(input_usd), output_per_mtok=Decimal(1),
                                  valid_from=valid_from, source="test")
    calls = [writer_call(f"c{n}", prompt_tokens=1_000_000, completion_tokens=0, at_s=at_s)
             for n, at_s in enumerate([-60, 3600, 3 * 3600])]
    analyzed(api, session_payload(api_calls=calls, duration_s=4 * 3600))
    project = Project.objects.get(slug="default")

    [then] = what_if_cost(project=project, episodes=["ep001"], provider="acme",
                          model="cheap-1", at_call_time=True)
    [today] = what_if_cost(project=project, episodes=["ep001"], provider="acme",
                           model="cheap-1")

    # The call before T0 had no cheap-1 price: counted apart, never as $0.
    assert (then.calls, then.unpriced_calls) == (3, 1)
    assert then.what_if_cost_usd == Decimal("0.6")  # 0.20 at T0 + 1 h, 0.40 at T0 + 3 h
    assert today.what_if_cost_usd == Decimal("1.2")  # three calls at today's 0.40
    assert then.actual_cost_usd == today.actual_cost_usd == Decimal("6")  # 3 x $2 writer-1


def test_what_if_with_an_unpriced_model_says_so(project):
    with pytest.raises(ModelPrice.DoesNotExist):
        what_if_cost(project=project, episodes=["ep001"], provider="acme", model="nothing")


def test_shipped_price_table_cites_a_source_for_every_row(db):
    shipped = ModelPrice.objects.all()
    assert shipped.filter(provider="openai", model="gpt-4o-mini").exists()
    assert not shipped.filter(source="").exists()
