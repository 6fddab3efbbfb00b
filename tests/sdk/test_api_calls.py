"""record_api_call: token split, prompt hashing, built-in and user prices, errors."""

from __future__ import annotations

import hashlib

import pytest

import perfmon
from perfmon import PerformanceMetrics, _pricing, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@pytest.fixture
def price_table():
    saved = dict(_pricing._PRICES)
    yield
    _pricing._PRICES.clear()
    _pricing._PRICES.update(saved)


def test_original_signature_maps_to_total_tokens_cost_and_error_only():
    metrics = PerformanceMetrics("ep001")
    metrics.record_api_call(830, 0.0042, False)
    (wire,) = metrics.to_dict()["api_calls"]
    assert {k: v for k, v in wire.items() if k not in ("id", "at")} == {
        "operation_id": None,
        "total_tokens": 830,
        "cost_usd": 0.0042,
        "error": False,
    }


def test_known_model_without_cost_is_estimated_locally_and_sent_for_the_server_to_price():
    metrics = PerformanceMetrics("ep001")
    call = metrics.record_api_call(
        model="gpt-4o-mini", provider="openai", prompt_tokens=700, completion_tokens=130,
        cached_tokens=200, latency_s=1.9,
    )
    # 500 fresh input at $0.15/M + 200 cached at $0.075/M + 130 output at $0.60/M
    expected = (500 * 0.15 + 200 * 0.075 + 130 * 0.60) / 1_000_000
    assert call.cost_usd is None
    assert call.estimated_cost_usd == pytest.approx(expected)
    assert call.total_tokens == 830
    assert metrics.estimated_api_cost == pytest.approx(expected)
    assert metrics.unpriced_api_calls == 0
    wire = metrics.to_dict()["api_calls"][0]
    assert "cost_usd" in wire and wire["cost_usd"] is None
    assert wire["model"] == "gpt-4o-mini" and wire["provider"] == "openai"
    assert wire["latency_s"] == 1.9 and wire["cached_tokens"] == 200


def test_dated_model_names_use_the_base_price():
    assert _pricing.get_model_price("gpt-4o-mini-2024-07-18") == _pricing.get_model_price(
        "gpt-4o-mini"
    )
    assert _pricing.get_model_price("claude-3-5-sonnet-20241022") is not None
    assert _pricing.get_model_price("claude-3-5-haiku-latest") is not None


def test_cache_write_tokens_have_their_own_price():
    cost = perfmon.estimate_cost("claude-3-5-sonnet", 1000, 100, cached_tokens=300,
                                 cache_write_tokens=200)
    assert cost == pytest.approx((500 * 3.0 + 300 * 0.30 + 200 * 3.75 + 100 * 15.0) / 1e6)


def test_unknown_model_is_left_for_the_server_to_price():
    metrics = PerformanceMetrics("ep001")
    call = metrics.record_api_call(model="house-model-7b", prompt_tokens=100,
                                   completion_tokens=10)
    assert call.cost_usd is None
    assert metrics.unpriced_api_calls == 1
    assert metrics.estimated_api_cost == 0.0
    wire = metrics.to_dict()["api_calls"][0]
    assert "cost_usd" in wire and wire["cost_usd"] is None


def test_user_can_extend_the_price_table(price_table):
    perfmon.register_model_price("house-model-7b", 1.0, 2.0)
    metrics = PerformanceMetrics("ep001")
    call = metrics.record_api_call(model="House-Model-7B", prompt_tokens=1000,
                                   completion_tokens=500)
    assert call.estimated_cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert call.cost_usd is None


def test_explicit_cost_wins_over_the_table():
    metrics = PerformanceMetrics("ep001")
    call = metrics.record_api_call(cost=0.5, model="gpt-4o", prompt_tokens=1,
                                   completion_tokens=1)
    assert call.cost_usd == 0.5


def test_prompt_is_hashed_and_never_stored():
    metrics = PerformanceMetrics("ep001")
    prompt = "Write a cold open where the intern replaces the coffee machine."
    call = metrics.record_api_call(tokens_used=10, prompt=prompt)
    assert call.prompt_hash == hashlib.sha256(prompt.encode()).hexdigest()
    assert prompt not in repr(metrics.to_dict())
    messages = [{"role": "user", "content": prompt}]
    same = metrics.record_api_call(prompt=messages)
    again = metrics.record_api_call(prompt=[{"content": prompt, "role": "user"}])
    assert same.prompt_hash == again.prompt_hash != call.prompt_hash


def test_errors_can_be_flags_messages_or_exceptions():
    metrics = PerformanceMetrics("ep001")
    metrics.record_api_call(error=True)
    metrics.record_api_call(error="rate limited")
    metrics.record_api_call(error=TimeoutError("read timed out"))
    metrics.record_api_call()
    wires = metrics.to_dict()["api_calls"]
    assert [w["error"] for w in wires] == [True, True, True, False]
    assert [w.get("error_message") for w in wires] == [
        None, "rate limited", "TimeoutError: read timed out", None
    ]
    assert metrics.api_errors == 3


def test_invalid_cost_is_not_sent():
    metrics = PerformanceMetrics("ep001")
    call = metrics.record_api_call(cost=-1.0)
    assert call.cost_usd is None


def test_monitor_passes_everything_through_to_the_current_session():
    with monitor.session("ep001") as session:
        with monitor.operation("scene"):
            call = monitor.record_api_call(
                model="gpt-4o", prompt_tokens=1000, completion_tokens=100, latency_s=2.0,
                prompt="hello",
            )
    assert call.cost_usd is None  # the server prices it
    assert call.estimated_cost_usd == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    wire = session.to_dict()["api_calls"][0]
    assert wire["operation_id"] == "o1"
    assert wire["prompt_hash"] == hashlib.sha256(b"hello").hexdigest()
