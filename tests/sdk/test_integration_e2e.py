"""A generator using the real openai and anthropic clients, instrumented, against the fake
provider, shipping its session to the real ingest API (Django live server): the server
prices each call from its ModelPrice table, and reprices when a price row is added."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import anthropic
import openai
import pytest
from django.utils import timezone

import perfmon
from perfmon.demo.fake_provider import Completion, FakeProvider
from tests.sdk.llm_helpers import (  # noqa: F401  (autouse fixtures)
    isolated_perfmon,
    monitor,
    nothing_instrumented_after,
)

OPENAI_MODEL = "gpt-5-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OUTLINE = Completion(prompt_tokens=2000, cached_tokens=1500, completion_tokens=500,
                     reasoning_tokens=200)
DIALOGUE = Completion(prompt_tokens=10_000, cached_tokens=6000, cache_write_5m_tokens=1000,
                      cache_write_1h_tokens=2000, completion_tokens=800)


def price(provider: str, model: str, valid_from, *prices: str, source: str = "test"):
    from metrics.models import ModelPrice

    fields = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
              "cache_write_per_mtok", "cache_write_1h_per_mtok")
    return ModelPrice.objects.create(provider=provider, model=model, valid_from=valid_from,
                                     source=source, **dict(zip(fields, prices, strict=False)))


def generate(fake: FakeProvider) -> None:
    """What a generator engineer writes: plain client calls inside a perfmon session."""
    writer = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
    editor = anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-test")
    with monitor.session("ep001_take1", episode="ep001", workflow="script_generation"):
        with monitor.operation("outline"):
            fake.completion = OUTLINE
            writer.chat.completions.create(model=OPENAI_MODEL,
                                           messages=[{"role": "user", "content": "Outline"}])
        with monitor.operation("dialogue"):
            fake.completion = DIALOGUE
            editor.messages.create(model=ANTHROPIC_MODEL, max_tokens=1024,
                                   messages=[{"role": "user", "content": "Dialogue"}])


def session_cost_becomes(expected: Decimal, timeout_s: float = 10.0) -> Decimal:
    from metrics.models import Session

    deadline = time.monotonic() + timeout_s
    while True:
        cost = Session.objects.get(external_id="ep001_take1").cost_usd
        if cost == expected or time.monotonic() > deadline:
            return cost
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_server_side_cost_matches_a_hand_calculation_and_follows_a_new_price(
    live_server, api_key, tmp_path
):
    from metrics.models import ApiCall

    yesterday = timezone.now() - timedelta(days=1)
    price("openai", OPENAI_MODEL, yesterday, "0.25", "2.00", "0.025")
    price("anthropic", ANTHROPIC_MODEL, yesterday, "3.00", "15.00", "0.30", "3.75", "6.00")
    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0)
    perfmon.instrument_openai()
    perfmon.instrument_anthropic()
    with FakeProvider() as fake:
        generate(fake)
    assert perfmon.flush(10) and perfmon.stats()["sent"] == 1

    # By hand, USD per million tokens. OpenAI: 500 uncached input x 0.25, 1500 cached
    # x 0.025, 500 output x 2.00 = 1162.5. Anthropic: 1000 uncached input x 3.00, 6000 cache
    # reads x 0.30, 1000 5-minute writes x 3.75, 2000 1-hour writes x 6.00, 800 output
    # x 15.00 = 32550.
    openai_cost, anthropic_cost = Decimal("0.0011625"), Decimal("0.03255")
    assert session_cost_becomes(openai_cost + anthropic_cost) == Decimal("0.0337125")
    calls = {call.provider: call for call in ApiCall.objects.all()}
    assert calls["openai"].cost_usd == openai_cost
    assert calls["anthropic"].cost_usd == anthropic_cost
    assert {call.cost_source for call in calls.values()} == {ApiCall.CostSource.PRICE_TABLE}
    dialogue = calls["anthropic"]
    assert (dialogue.prompt_tokens, dialogue.cached_tokens, dialogue.cache_write_tokens,
            dialogue.cache_write_1h_tokens, dialogue.completion_tokens) == (
        10_000, 6000, 3000, 2000, 800)
    assert (calls["openai"].reasoning_tokens, calls["openai"].attempts) == (200, 1)

    # A new Anthropic price, valid from before the call: 1000 x 4.00 + 6000 x 0.40
    # + 1000 x 5.00 + 2000 x 8.00 + 800 x 20.00 = 43400 per million.
    price("anthropic", ANTHROPIC_MODEL, timezone.now() - timedelta(hours=1),
          "4.00", "20.00", "0.40", "5.00", "8.00")
    assert session_cost_becomes(openai_cost + Decimal("0.0434")) == Decimal("0.0445625")
    assert ApiCall.objects.get(provider="openai").cost_usd == openai_cost  # untouched
