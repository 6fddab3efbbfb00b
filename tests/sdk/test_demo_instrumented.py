"""The demo records its model calls the way a user would: the real openai client against the
fake provider, through perfmon.instrument_openai(), on one clock."""

import asyncio
from datetime import datetime

import pytest

from perfmon.demo import run_demo
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

FAST = 400.0


@pytest.fixture(scope="module")
def sessions() -> dict:
    results = asyncio.run(run_demo(episodes=5, seed=7, speed=FAST))
    return {result.run.session_id: result.payload for result in results}


def duration_s(payload: dict) -> float:
    session = payload["session"]
    started = datetime.fromisoformat(session["started_at"])
    return (datetime.fromisoformat(session["ended_at"]) - started).total_seconds()


def test_every_call_was_observed_through_the_client(sessions):
    calls = [call for payload in sessions.values() for call in payload["api_calls"]]

    assert calls and all(call["provider"] == "openai" for call in calls)
    # Only the instrumentation knows the HTTP attempts: no call was recorded by hand.
    assert all(call["attempts"] >= 1 for call in calls)
    assert {call["model"] for call in calls} == {"gpt-4o", "gpt-4o-mini"}


def test_dialogue_is_streamed_with_a_time_to_first_token(sessions):
    payload = sessions["ep001_run1"]
    names = {op["id"]: op["name"] for op in payload["operations"]}
    for call in payload["api_calls"]:
        streamed = names[call["operation_id"]] == "dialogue"
        assert call.get("streamed", False) is streamed
        if streamed and not call["error"]:
            assert 0 < call["time_to_first_token_s"] <= call["latency_s"]
            assert call["completion_tokens"] > 0  # usage asked for with include_usage


def test_the_rate_limit_burst_shows_failed_calls_and_client_retries(sessions):
    calls = sessions["ep003_run1"]["api_calls"]
    failed = [call for call in calls if call["error"]]

    assert len(failed) >= 3
    # Each failed call is the client's two HTTP attempts, both refused.
    assert all(call["attempts"] == 2 and "429" in call["error_message"] for call in failed)
    assert "prompt_tokens" not in failed[0]  # no answer: tokens unknown, not zero


def test_calls_and_sessions_run_on_the_same_clock(sessions):
    for payload in sessions.values():
        longest = max(call["latency_s"] for call in payload["api_calls"])
        assert longest <= duration_s(payload)
