"""perfmon/_wire.py names the fields and limits the server's schema v1 has, and a payload
with every field set validates there."""

from __future__ import annotations

from ingest import bounds, schemas
from perfmon import _health, _wire, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


def test_field_names_match_the_servers_schema():
    assert set(_wire.PAYLOAD_FIELDS) == set(schemas.SessionPayload.model_fields)
    assert set(_wire.SESSION_FIELDS) == set(schemas.SessionIn.model_fields)
    assert set(_wire.OPERATION_FIELDS) == set(schemas.OperationIn.model_fields)
    assert set(_wire.API_CALL_FIELDS) == set(schemas.ApiCallIn.model_fields)
    assert set(_wire.SDK_REPORT_FIELDS) == set(schemas.SdkReportIn.model_fields)
    assert set(_health.COUNT_KEYS) < set(_wire.SDK_REPORT_FIELDS)


def test_limits_match_the_servers_schema():
    assert (_wire.MAX_OPERATIONS, _wire.MAX_API_CALLS, _wire.MAX_TAGS, _wire.MAX_KEYS) == (
        schemas.MAX_OPERATIONS, schemas.MAX_API_CALLS, schemas.MAX_TAGS,
        schemas.MAX_METADATA_KEYS)
    assert (_wire.OPERATION_METADATA_BYTES, _wire.SESSION_METADATA_BYTES, _wire.MAX_DEPTH) == (
        schemas.MAX_OPERATION_METADATA_BYTES, schemas.MAX_SESSION_METADATA_BYTES,
        bounds.MAX_METADATA_DEPTH)
    assert _wire.MAX_ERROR_CHARS <= schemas.MAX_ERROR_CHARS


def test_a_payload_using_every_field_validates_on_the_server():
    with monitor.session("ep001_full", episode="ep001", workflow="w", tags=["t"],
                         metadata={"k": 1}) as metrics:
        with monitor.operation("scene", n=1):
            monitor.record_cache_hit("llm")
            monitor.record_api_call(
                model="gpt-4o", provider="openai", prompt_tokens=100, completion_tokens=50,
                cached_tokens=20, cache_write_tokens=10, cache_write_1h_tokens=4,
                reasoning_tokens=30, latency_s=1.0, time_to_first_token_s=0.2, streamed=True,
                attempts=3, prompt="p", error="overloaded",
            )
    payload = metrics.to_dict()
    payload["session"]["sdk"] = _health.report(metrics, {"sent": 2})
    parsed = schemas.SessionPayload.model_validate(payload)
    (call,) = parsed.api_calls
    assert (call.cache_write_1h_tokens, call.reasoning_tokens, call.streamed,
            call.time_to_first_token_s, call.attempts) == (4, 30, True, 0.2, 3)
    assert parsed.session.sdk.sent == 2 and parsed.session.sdk.operations == 1


def test_an_unknown_key_in_the_sdk_report_is_dropped_not_refused():
    report = schemas.SdkReportIn.model_validate({"sent": 1, "from_a_newer_sdk": 5})
    assert report.model_dump()["sent"] == 1 and "from_a_newer_sdk" not in report.model_dump()


def test_a_part_larger_than_its_whole_is_cut_so_the_session_is_not_refused(caplog):
    with monitor.session("ep001_parts") as metrics:
        monitor.record_api_call(model="claude-sonnet-4", prompt_tokens=100,
                                completion_tokens=10, cache_write_tokens=5,
                                cache_write_1h_tokens=8, reasoning_tokens=40)
    (call,) = metrics.to_dict()["api_calls"]
    assert (call["cache_write_1h_tokens"], call["reasoning_tokens"]) == (5, 10)
    schemas.SessionPayload.model_validate(metrics.to_dict())
    assert "reasoning_tokens=40 is more than completion_tokens=10" in caplog.text
