"""perfmon.instrument_anthropic() with the real anthropic package against the local fake
provider."""

from __future__ import annotations

import gc
import hashlib
import json

import anthropic
import pytest
from anthropic import _base_client

import perfmon
from perfmon.demo.fake_provider import Completion, Failure
from tests.sdk.llm_helpers import (  # noqa: F401  (autouse fixtures)
    RETRY_FAST_S,
    isolated_perfmon,
    monitor,
    nothing_instrumented_after,
    only_call,
    running_provider,
    wire_calls,
)

MODEL = "claude-sonnet-4-5"
SYSTEM = "You write sitcom dialogue."
MESSAGES = [{"role": "user", "content": "Scene 3: Ada meets the landlord."}]
# Anthropic's own counts for this answer: input_tokens 300 (uncached), cache reads 2000,
# cache writes 700 of which 500 to the 1-hour cache, output 250.
LEDGER = Completion(model="claude-sonnet-4-5-20250929", prompt_tokens=3000,
                    cached_tokens=2000, cache_write_5m_tokens=200, cache_write_1h_tokens=500,
                    completion_tokens=250, text="ADA: The boiler? LANDLORD: Vintage.")


@pytest.fixture
def provider():
    yield from running_provider()


def sync_client(provider, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=provider.url, api_key="sk-ant-test", **options)


def async_client(provider, **options) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=provider.url, api_key="sk-ant-test", **options)


def create(client, **options):
    return client.messages.create(model=MODEL, max_tokens=512, system=SYSTEM,
                                  messages=MESSAGES, **options)


def assert_ledger(call: dict) -> None:
    assert call["model"] == "claude-sonnet-4-5-20250929"
    assert call["prompt_tokens"] == 300 + 2000 + 700  # every input token
    assert call["cached_tokens"] == 2000  # cache_read_input_tokens
    assert call["cache_write_tokens"] == 700  # cache_creation_input_tokens
    assert call["cache_write_1h_tokens"] == 500  # cache_creation.ephemeral_1h_input_tokens
    assert call["completion_tokens"] == 250
    assert call["total_tokens"] == 3250
    assert "reasoning_tokens" not in call  # Anthropic does not report them apart


def test_the_fake_provider_reports_anthropics_own_counts(provider):
    provider.completion = LEDGER
    usage = create(sync_client(provider)).usage

    assert (usage.input_tokens, usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens) == (300, 2000, 700)
    assert usage.cache_creation.ephemeral_1h_input_tokens == 500


def test_a_message_becomes_one_call_with_every_input_token_in_prompt_tokens(provider):
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        with monitor.operation("dialogue"):
            message = create(sync_client(provider))

    assert message.content[0].text == LEDGER.text
    call = only_call(session)
    assert_ledger(call)
    assert call["provider"] == "anthropic" and call["operation_id"] == "o1"
    assert call["attempts"] == 1 and call["error"] is False
    assert 0 < call["latency_s"] <= session.total_duration_seconds
    text = json.dumps({"messages": MESSAGES, "system": SYSTEM}, sort_keys=True,
                      ensure_ascii=False)
    assert call["prompt_hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_a_call_without_a_system_prompt_hashes_its_messages_alone(provider):
    """The same prompt has the same hash in every process: the client's placeholder for
    the system prompt it was not given is no part of it."""
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        sync_client(provider).messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)

    text = json.dumps(MESSAGES, sort_keys=True, ensure_ascii=False)
    assert only_call(session)["prompt_hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_the_stream_helper_records_the_final_usage(provider):
    provider.completion = Completion(**{**LEDGER.__dict__, "latency_s": 0.02,
                                        "chunk_delay_s": 0.005})
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        with sync_client(provider).messages.stream(model=MODEL, max_tokens=512,
                                                   messages=MESSAGES) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()

    assert text == LEDGER.text and final.usage.output_tokens == 250
    call = only_call(session)
    assert_ledger(call)
    assert call["streamed"] is True
    # 20 ms before the answer and 5 ms before each of its five words.
    assert 0.025 <= call["time_to_first_token_s"] <= call["latency_s"]
    assert call["latency_s"] >= 0.045


def test_an_abandoned_stream_keeps_the_input_counts_of_message_start(provider):
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        stream = create(sync_client(provider), stream=True)
        for event in stream:
            if event.type == "content_block_delta":
                break
        del stream
        gc.collect()

    call = only_call(session)
    assert call["streamed"] is True and call["error"] is False
    assert call["prompt_tokens"] == 3000 and call["cache_write_1h_tokens"] == 500
    assert call["completion_tokens"] == 1  # message_start's count; message_delta never came


def test_leaving_the_stream_helper_early_records_the_call_once(provider):
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        with sync_client(provider).messages.stream(model=MODEL, max_tokens=512,
                                                   messages=MESSAGES) as stream:
            for _ in stream.text_stream:
                break
        assert len(wire_calls(session)) == 1  # recorded on leaving the block
        gc.collect()

    assert only_call(session)["streamed"] is True


def test_an_error_event_mid_stream_raises_and_is_recorded_once(provider):
    provider.completion = Completion(**{**LEDGER.__dict__, "stream_error_after": 1})
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            for _ in create(sync_client(provider), stream=True):
                pass
        gc.collect()

    call = only_call(session)
    assert call["error"] is True and "Overloaded" in call["error_message"]
    assert call["prompt_tokens"] == 3000  # what was received before the error


def test_a_429_then_success_is_one_call_with_two_attempts(provider):
    provider.completion = LEDGER
    provider.script(Failure(429, retry_after_s=RETRY_FAST_S))
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        create(sync_client(provider))

    call = only_call(session)
    assert call["attempts"] == 2 and call["error"] is False
    assert_ledger(call)


def test_a_500_is_recorded_as_an_error(provider):
    provider.script(Failure(500))
    perfmon.instrument_anthropic()
    with monitor.session("s1") as session:
        with pytest.raises(anthropic.InternalServerError):
            create(sync_client(provider, max_retries=0))

    call = only_call(session)
    assert call["error"] is True and call["attempts"] == 1
    assert "Internal server error" in call["error_message"]
    assert call["model"] == MODEL


async def test_the_async_client_records_messages_and_streams(provider):
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    client = async_client(provider)
    async with monitor.session("s1") as session:
        await create(client)
        async with client.messages.stream(model=MODEL, max_tokens=512,
                                          messages=MESSAGES) as stream:
            async for _ in stream.text_stream:
                pass
        raw = await create(client, stream=True)
        async for _ in raw:
            break
        await raw.close()

    plain, streamed, cut = wire_calls(session)
    assert_ledger(plain)
    assert_ledger(streamed)
    assert streamed["streamed"] is True and "streamed" not in plain
    assert cut["streamed"] is True and cut["completion_tokens"] == 1


def test_client_scoping_and_uninstrument(provider):
    original = _base_client.AsyncAPIClient.__dict__["request"]
    chosen, other = sync_client(provider), sync_client(provider)
    perfmon.instrument_anthropic(client=chosen)
    perfmon.instrument_anthropic(client=chosen)
    with monitor.session("s1") as session:
        create(chosen)
        create(other)
    assert len(wire_calls(session)) == 1

    perfmon.uninstrument_anthropic()
    assert _base_client.AsyncAPIClient.__dict__["request"] is original
    with monitor.session("s2") as after:
        create(chosen)
    assert wire_calls(after) == []


def test_outside_a_session_nothing_is_recorded_and_raw_responses_are_read(provider):
    provider.completion = LEDGER
    perfmon.instrument_anthropic()
    create(sync_client(provider))  # no session: not recorded anywhere
    with monitor.session("s1") as session:
        raw = sync_client(provider).messages.with_raw_response.create(
            model=MODEL, max_tokens=10, messages=MESSAGES)

    assert raw.parse().usage.cache_read_input_tokens == 2000  # the caller's object works
    assert_ledger(only_call(session))


def test_a_part_larger_than_its_whole_is_dropped_not_sent():
    from perfmon.integrations.anthropic import ledger

    odd = ledger({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 3,
                  "1h": 4})
    assert (odd.cache_write_tokens, odd.cache_write_1h_tokens) == (3, None)
    assert odd.prompt_tokens == 13
