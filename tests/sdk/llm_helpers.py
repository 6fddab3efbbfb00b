"""Shared pieces of the client-integration tests: the fake provider and recorded calls.

The official ``openai`` and ``anthropic`` packages talk over loopback HTTP to
perfmon.demo.fake_provider; nothing is mocked. Each test starts from uninstrumented clients.
"""

from __future__ import annotations

from typing import Any

import pytest

import perfmon
from perfmon.demo.fake_provider import FakeProvider
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (re-exported: autouse fixture)

monitor = perfmon.get_performance_monitor()
RETRY_FAST_S = 0.001  # retry-after the fake provider sends, so retries do not wait


def running_provider() -> Any:
    """For a module's ``provider`` fixture: a fake provider for one test."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(autouse=True)
def nothing_instrumented_after() -> Any:
    yield
    perfmon.uninstrument_openai()
    perfmon.uninstrument_anthropic()


def wire_calls(session: Any) -> list[dict[str, Any]]:
    """The session's API calls as the SDK sends them to the server."""
    return session.to_dict()["api_calls"]


def only_call(session: Any) -> dict[str, Any]:
    calls = wire_calls(session)
    assert len(calls) == 1, calls
    return calls[0]
