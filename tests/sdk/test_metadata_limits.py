"""Metadata the server would refuse is fitted by the SDK, so the session still arrives."""

import math

import pytest

import perfmon
from ingest.schemas import SessionPayload
from perfmon._wire import OPERATION_METADATA_BYTES, fit_metadata


@pytest.fixture
def monitor():
    return perfmon.get_performance_monitor()


def test_oversized_deep_and_odd_metadata_still_makes_a_valid_payload(monitor):
    deep: dict = {}
    inner = deep
    for _ in range(30):
        inner["x"] = {}
        inner = inner["x"]
    with monitor.session("meta-limits", metadata={"blob": "z" * 200_000}) as metrics:
        with monitor.operation("step", prompt="p" * 50_000, deep=deep, ratio=math.nan,
                               when=object(), tags={"a"}):
            pass

    payload = metrics.to_dict()
    SessionPayload.model_validate(payload)  # what the server would check
    op_meta = payload["operations"][0]["metadata"]
    assert op_meta["prompt"] == "<dropped: 50002 bytes>"
    assert op_meta["ratio"] == "nan"
    assert op_meta["tags"] == ["a"]
    assert payload["session"]["metadata"]["blob"].startswith("<dropped:")


def test_metadata_within_the_limits_is_kept_as_it_is():
    meta = {"scene": 3, "model": "gpt-4o", "beats": [1, 2, {"x": 1.5}], "ok": True}
    assert fit_metadata(meta, OPERATION_METADATA_BYTES) == meta
