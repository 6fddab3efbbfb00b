"""perfmon.instrument_openai() with the real openai package against the local fake provider."""

from __future__ import annotations

import gc
import hashlib
import json
import time

import openai
import pytest
from openai import _base_client

import perfmon
from perfmon.demo.fake_provider import Completion, Failure
from tests.sdk.helpers import run_python
from tests.sdk.llm_helpers import (  # noqa: F401  (autouse fixtures)
    RETRY_FAST_S,
    isolated_perfmon,
    monitor,
    nothing_instrumented_after,
    only_call,
    running_provider,
    wire_calls,
)

MESSAGES = [{"role": "system", "content": "You write sitcom dialogue."},
            {"role": "user", "content": "Scene 3: Ada meets the landlord."}]
LEDGER = Completion(model="gpt-4o-2024-08-06", prompt_tokens=1200, completion_tokens=300,
                    cached_tokens=1024, reasoning_tokens=120,
                    text="ADA: You said the boiler was new. LANDLORD: It is new to you.")


@pytest.fixture
def provider():
    yield from running_provider()


def sync_client(provider, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.openai_base_url, api_key="sk-test", **options)


def async_client(provider, **options) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk-test", **options)


def create(client, **options):
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **options)


def prompt_hash(prompt) -> str:
    text = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_chat_completion_becomes_one_call_of_the_current_operation(provider):
    provider.completion = LEDGER
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        with monitor.operation("dialogue"):
            answer = create(sync_client(provider))

    assert answer.choices[0].message.content == LEDGER.text  # the caller's answer is intact
    call = only_call(session)
    assert call["operation_id"] == "o1"
    assert call["provider"] == "openai"
    assert call["model"] == "gpt-4o-2024-08-06"  # the model that answered, not the alias
    assert call["prompt_tokens"] == 1200  # OpenAI's prompt_tokens already include cached
    assert call["cached_tokens"] == 1024
    assert call["completion_tokens"] == 300
    assert call["reasoning_tokens"] == 120  # part of the completion tokens
    assert call["total_tokens"] == 1500
    assert "cache_write_tokens" not in call  # OpenAI does not report cache writes
    assert call["attempts"] == 1
    assert call["error"] is False and "error_message" not in call
    assert "streamed" not in call and "time_to_first_token_s" not in call
    assert 0 < call["latency_s"] <= session.total_duration_seconds
    assert call["prompt_hash"] == prompt_hash(MESSAGES)
    assert "landlord" not in json.dumps(session.to_dict())  # the prompt itself is never kept


def test_counts_openai_does_not_report_are_not_counted_as_fitted(provider):
    # OpenAI reports no cache writes: the 1-hour part is None, sent as 0, and nothing was
    # fitted to the server's limits (the session's SDK report says how many values were).
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        create(sync_client(provider))
        create(sync_client(provider))
    session.to_dict()
    assert session.fitted_in_payload == 0
    assert len(session.api_call_records) == 2


def test_a_raw_response_is_read_for_its_tokens(provider):
    provider.completion = LEDGER
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        raw = sync_client(provider).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES)

    assert raw.parse().usage.prompt_tokens == 1200  # the caller's object works
    call = only_call(session)
    assert call["model"] == "gpt-4o-2024-08-06"
    assert (call["prompt_tokens"], call["cached_tokens"]) == (1200, 1024)
    assert (call["completion_tokens"], call["reasoning_tokens"]) == (300, 120)
    assert call["total_tokens"] == 1500
    assert call["prompt_hash"] == prompt_hash(MESSAGES)


def test_a_stream_with_usage_records_tokens_and_time_to_first_token(provider):
    provider.completion = Completion(prompt_tokens=40, completion_tokens=9, cached_tokens=0,
                                     text="one two three four", latency_s=0.03,
                                     chunk_delay_s=0.01)
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        stream = create(sync_client(provider), stream=True,
                        stream_options={"include_usage": True})
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream
                       if chunk.choices)

    assert text == "one two three four"
    call = only_call(session)
    assert call["streamed"] is True
    assert (call["prompt_tokens"], call["completion_tokens"]) == (40, 9)
    # The server waits 30 ms to answer and 10 ms before each word: the first word cannot
    # arrive before 40 ms, the last before 70 ms.
    assert 0.04 <= call["time_to_first_token_s"] <= call["latency_s"]
    assert call["latency_s"] >= 0.07


def test_a_stream_without_usage_has_unknown_tokens_and_gets_no_injected_option(provider):
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        for _ in create(sync_client(provider), stream=True):
            pass

    call = only_call(session)
    assert call["streamed"] is True and call["model"] == "gpt-4o"
    assert "prompt_tokens" not in call and "completion_tokens" not in call  # unknown, not 0
    assert "stream_options" not in provider.requests[-1].body


@pytest.mark.parametrize("abandon", ["break_and_drop", "close", "with_block"])
def test_an_abandoned_stream_is_recorded_once_with_what_was_received(provider, abandon):
    provider.completion = Completion(model="gpt-4o-mini-2024-07-18",
                                     text="a b c d e f g h", chunk_delay_s=0.002)
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        client = sync_client(provider)
        if abandon == "with_block":
            with create(client, stream=True, stream_options={"include_usage": True}) as stream:
                for _ in stream:
                    break
        else:
            started = time.perf_counter()
            stream = create(client, stream=True, stream_options={"include_usage": True})
            next(iter(stream))
            read_for = time.perf_counter() - started
            if abandon == "close":
                stream.close()
                assert len(wire_calls(session)) == 1  # recorded at once, not at collection
            else:
                time.sleep(0.2)  # the caller moves on; the collector comes later still
            del stream
            gc.collect()
            # Dropped: the call ended with the last chunk the caller took, not at collection.
            assert abandon == "close" or only_call(session)["latency_s"] <= read_for

    call = only_call(session)
    assert call["streamed"] is True and call["error"] is False
    assert call["model"] == "gpt-4o-mini-2024-07-18"  # from the chunks that did arrive
    assert "prompt_tokens" not in call  # the usage chunk never came


def test_a_stream_that_fails_half_way_raises_and_is_recorded_once(provider):
    provider.completion = Completion(text="a b c d", stream_error_after=2)
    perfmon.instrument_openai()
    received = []
    with monitor.session("s1") as session:
        stream = create(sync_client(provider), stream=True)
        with pytest.raises(openai.APIError, match="server had an error"):
            for chunk in stream:
                received.append(chunk)
        stream.close()

    assert len(received) == 3  # the role chunk and two words
    call = only_call(session)
    assert call["error"] is True and "server had an error" in call["error_message"]
    assert call["time_to_first_token_s"] is not None


def test_a_429_then_success_is_one_call_with_two_attempts(provider):
    provider.completion = LEDGER
    provider.script(Failure(429, retry_after_s=RETRY_FAST_S))
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        create(sync_client(provider))

    call = only_call(session)
    assert call["attempts"] == 2 and call["error"] is False
    assert call["completion_tokens"] == 300
    assert [r.headers.get("x-stainless-retry-count") for r in provider.requests] == ["0", "1"]


def test_a_500_on_every_attempt_is_recorded_as_an_error(provider):
    provider.script(*[Failure(500, retry_after_s=RETRY_FAST_S)] * 3)
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        with pytest.raises(openai.InternalServerError):
            create(sync_client(provider, max_retries=2))

    call = only_call(session)
    assert call["error"] is True and call["attempts"] == 3
    assert call["error_message"].startswith("InternalServerError: Error code: 500")
    assert call["model"] == "gpt-4o"  # no answer: the requested model
    assert "prompt_tokens" not in call


def test_a_connection_failure_is_recorded_with_its_attempts(provider):
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test",
                           max_retries=0)
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        with pytest.raises(openai.APIConnectionError):
            create(client)

    call = only_call(session)
    assert call["error"] is True and call["attempts"] == 1


async def test_the_async_client_records_calls_and_streams(provider):
    provider.completion = LEDGER
    perfmon.instrument_openai()
    client = async_client(provider)
    async with monitor.session("s1") as session:
        with monitor.operation("dialogue"):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True,
            stream_options={"include_usage": True})
        async for _ in stream:
            pass
        abandoned = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                         stream=True)
        async for _ in abandoned:
            break
        await abandoned.close()

    plain, streamed, cut = wire_calls(session)
    assert plain["operation_id"] == "o1" and plain["cached_tokens"] == 1024
    assert "streamed" not in plain
    assert streamed["streamed"] is True and streamed["reasoning_tokens"] == 120
    assert streamed["operation_id"] is None  # made outside the operation
    assert cut["streamed"] is True and "prompt_tokens" not in cut


def test_the_responses_api_is_recorded_too(provider):
    provider.completion = LEDGER
    perfmon.instrument_openai()
    client = sync_client(provider)
    with monitor.session("s1") as session:
        client.responses.create(model="gpt-4o", input="Scene 4, please.")
        for _ in client.responses.create(model="gpt-4o", input="Scene 5.", stream=True):
            pass

    plain, streamed = wire_calls(session)
    for call in (plain, streamed):
        assert call["model"] == "gpt-4o-2024-08-06"
        assert (call["prompt_tokens"], call["cached_tokens"]) == (1200, 1024)
        assert (call["completion_tokens"], call["reasoning_tokens"]) == (300, 120)
    assert plain["prompt_hash"] == prompt_hash("Scene 4, please.")
    assert streamed["streamed"] is True and streamed["time_to_first_token_s"] > 0


def test_client_scoping_records_only_that_client(provider):
    chosen, other = sync_client(provider), sync_client(provider)
    perfmon.instrument_openai(client=chosen)
    with monitor.session("s1") as session:
        create(chosen)
        create(other)

    assert len(wire_calls(session)) == 1
    assert len(provider.requests) == 2


def test_instrumenting_twice_records_each_call_once_and_uninstrument_restores(provider):
    original = _base_client.SyncAPIClient.__dict__["request"]
    client = sync_client(provider)
    perfmon.instrument_openai()
    perfmon.instrument_openai()
    perfmon.instrument_openai(client=client)
    with monitor.session("s1") as session:
        create(client)
    assert len(wire_calls(session)) == 1

    perfmon.uninstrument_openai()
    assert _base_client.SyncAPIClient.__dict__["request"] is original
    with monitor.session("s2") as after:
        create(client)
    assert wire_calls(after) == []


def test_a_call_outside_any_session_is_not_recorded(provider):
    perfmon.instrument_openai()
    answer = create(sync_client(provider))

    assert answer.choices[0].message.content == provider.completion.text
    with monitor.session("later") as session:
        pass
    assert wire_calls(session) == []
    assert monitor.get_session_history() == [session]


def test_a_disabled_monitor_records_nothing(provider):
    perfmon.instrument_openai()
    monitor.disable()
    with monitor.session("s1") as session:
        create(sync_client(provider))
    assert wire_calls(session) == []


def test_importing_perfmon_never_imports_the_client_packages():
    result = run_python(
        "import sys, perfmon\n"
        "perfmon.uninstrument_openai(); perfmon.uninstrument_anthropic()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_stream_helper_and_parse_are_recorded_once_each(provider):
    provider.completion = LEDGER
    perfmon.instrument_openai()
    client = sync_client(provider)
    with monitor.session("s1") as session:
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES,
                                            stream_options={"include_usage": True}) as stream:
            final = stream.get_final_completion()
        parsed = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)

    assert final.choices[0].message.content == parsed.choices[0].message.content == LEDGER.text
    helper, parse = wire_calls(session)
    assert helper["streamed"] is True and "streamed" not in parse
    for call in (helper, parse):
        assert (call["prompt_tokens"], call["cached_tokens"], call["completion_tokens"]) == (
            1200, 1024, 300)


def test_endpoints_it_does_not_know_pass_through_unrecorded(provider):
    perfmon.instrument_openai()
    with monitor.session("s1") as session:
        with pytest.raises(openai.NotFoundError):  # the fake provider has no embeddings
            sync_client(provider, max_retries=0).embeddings.create(
                model="text-embedding-3-small", input="Ada")

    assert wire_calls(session) == []


def test_a_patch_laid_over_ours_survives_uninstrument_and_reinstrument(provider):
    perfmon.instrument_openai()
    ours = _base_client.BaseClient.__dict__["_build_request"]

    def theirs(self, *args, **kwargs):  # another tool wrapping the same method after us
        return ours(self, *args, **kwargs)

    _base_client.BaseClient._build_request = theirs
    try:
        perfmon.uninstrument_openai()
        assert _base_client.BaseClient.__dict__["_build_request"] is theirs
        perfmon.instrument_openai()
        with monitor.session("s1") as session:
            create(sync_client(provider))
        assert only_call(session)["attempts"] == 1  # counted once, not once per layer
    finally:
        _base_client.BaseClient._build_request = ours  # the other tool goes away
        perfmon.uninstrument_openai()
    assert "__perfmon_original__" not in vars(_base_client.BaseClient._build_request)
