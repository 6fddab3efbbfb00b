"""One value the SDK cannot encode, or that the server would refuse, never costs the whole
session: it is replaced by a bounded, marked stand-in and the session arrives."""

from __future__ import annotations

import pytest

import perfmon
from ingest import schemas
from perfmon import get_performance_monitor
from tests.sdk.helpers import IngestStub, isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.fixture
def stub():
    with IngestStub() as server:
        yield server


def test_hostile_values_are_replaced_and_the_session_arrives(stub, tmp_path):
    assert perfmon.configure(url=stub.url, api_key="k", spool_dir=tmp_path, max_retries=0)
    with monitor.session("ep001_hostile", metadata={"huge": 10**5000, "odd": Unprintable()}):
        with monitor.operation("scene\udc80", big=-(2**70)):
            monitor.record_api_call(model="gpt-4o", prompt_tokens=-5, completion_tokens=7,
                                    error="x" * 20_000)
    assert perfmon.flush(10)

    assert stub.accepted["ep001_hostile"] == 1
    (request,) = stub.requests
    schemas.SessionPayload.model_validate(request.payload)  # the server would take it
    sent = request.payload
    assert sent["session"]["metadata"] == {"huge": "<integer of 16610 bits>",
                                           "odd": "<unprintable Unprintable>"}
    (op,) = sent["operations"]
    assert op["name"] == "scene?" and op["metadata"] == {"big": "<integer of 71 bits>"}
    (call,) = sent["api_calls"]
    assert call["prompt_tokens"] == 0 and call["total_tokens"] == 7
    assert call["error_message"] == "x" * 2000
    stats = perfmon.stats()
    assert (stats["sent"], stats["dropped"], stats["rejected"]) == (1, 0, 0)
    # Counted, so the session page says what was fitted: the two metadata values, the
    # operation's huge integer, the negative token count, the long error message, and
    # the name whose lone surrogate the encoder replaced.
    assert sent["session"]["sdk"]["fitted"] == 6
