"""Bad input gets a clear 4xx, never a 500, and never leaves anything half-written."""

import gzip
import json

import pytest
from django.test import override_settings

from metrics.models import ApiCall, Episode, Operation, Session
from tests.factories import operation, script_payload, session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_is_stored_by_a_refused_request():
    yield
    assert Session.objects.count() == 0
    assert Operation.objects.count() == 0
    assert ApiCall.objects.count() == 0
    assert Episode.objects.count() == 0


def locs(response) -> list[list]:
    return [error["loc"] for error in response.json()["detail"]]


def test_malformed_json_is_400(api):
    response = api.post("/sessions", b'{"schema_version": 1, "session": ')

    assert response.status_code == 400
    assert "Cannot parse request body" in response.json()["detail"]


def test_invalid_utf8_is_400(api):
    assert api.post("/sessions", b'{"schema_version": 1, "x": "\xff\xfe"}').status_code == 400


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(api, constant):
    body = json.dumps(script_payload()).replace('"duration_s": 42.0', f'"duration_s": {constant}')
    body = body.replace('"metadata": {}', f'"metadata": {{"x": {constant}}}', 1)

    assert api.post("/sessions", body.encode()).status_code == 400


def test_absurdly_deep_nesting_is_400(api):
    assert api.post("/sessions", b"[" * 100_000 + b"]" * 100_000).status_code == 400


def test_schema_violation_is_422_naming_the_field_path(api):
    payload = script_payload()
    payload["operations"][1]["duration_s"] = "slow"

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    assert ["body", "payload", "operations", 1, "duration_s"] in locs(response)


def test_missing_required_field_is_422(api):
    payload = session_payload()
    del payload["session"]["started_at"]

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    assert ["body", "payload", "session", "started_at"] in locs(response)


def test_unsupported_schema_version_is_422_naming_the_supported_ones(api):
    payload = session_payload()
    payload["schema_version"] = 2

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    assert "supported: 1" in response.json()["detail"][0]["msg"]


def test_unknown_top_level_key_is_rejected(api):
    payload = session_payload()
    payload["extra_stuff"] = {}

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    assert ["body", "payload", "extra_stuff"] in locs(response)


def test_naive_timestamp_is_rejected(api):
    payload = session_payload()
    payload["session"]["started_at"] = "2026-11-20T10:00:00"

    assert api.post("/sessions", payload).status_code == 422


def test_session_id_that_is_not_a_slug_is_rejected(api):
    assert api.post("/sessions", session_payload("<script>alert(1)</script>")).status_code == 422


def test_duplicate_operation_ids_are_rejected(api):
    ops = [operation("a", "x", start_s=0, duration_s=1), operation("a", "y", start_s=1,
                                                                    duration_s=1)]
    assert api.post("/sessions", session_payload(operations=ops)).status_code == 422


def test_negative_counts_and_huge_numbers_are_rejected(api):
    payload = session_payload()
    payload["session"]["cache"]["hits"] = -1
    assert api.post("/sessions", payload).status_code == 422
    payload["session"]["cache"]["hits"] = 10**30
    assert api.post("/sessions", payload).status_code == 422


def test_enormous_operation_name_is_rejected(api):
    ops = [operation("a", "x" * 10_000, start_s=0, duration_s=1)]
    assert api.post("/sessions", session_payload(operations=ops)).status_code == 422


def test_one_bad_operation_among_many_rejects_the_whole_payload(api):
    payload = script_payload(scenes=5)
    payload["operations"][-1]["started_at"] = "yesterday"

    assert api.post("/sessions", payload).status_code == 422


@override_settings(INGEST_MAX_BODY_BYTES=64 * 1024)
def test_body_over_the_limit_is_413(api):
    payload = session_payload(metadata={"blob": "x" * (65 * 1024)})

    response = api.post("/sessions", payload)

    assert response.status_code == 413


def test_body_over_ten_mib_is_413_by_default(api):
    response = api.post("/sessions", b" " * (10 * 1024 * 1024 + 1))

    assert response.status_code == 413


def test_gzip_bomb_is_413_without_inflating_it_all(api):
    bomb = gzip.compress(b" " * (200 * 1024 * 1024))  # ~200 KiB on the wire
    assert len(bomb) < 1024 * 1024

    response = api.post("/sessions", bomb, **{"Content-Encoding": "gzip"})

    assert response.status_code == 413


def test_corrupt_gzip_is_400(api):
    response = api.post("/sessions", b"\x1f\x8b not really gzip", **{"Content-Encoding": "gzip"})

    assert response.status_code == 400


def test_unsupported_content_encoding_is_415(api):
    response = api.post("/sessions", b"...", **{"Content-Encoding": "br"})

    assert response.status_code == 415


def test_session_ending_before_it_started_is_rejected(api):
    payload = session_payload()
    payload["session"]["ended_at"] = "2026-11-19T10:00:00+00:00"

    assert api.post("/sessions", payload).status_code == 422


@pytest.mark.parametrize(("field", "limit"), [("workflow", 128), ("release", 128),
                                              ("environment", 64), ("host", 255)])
def test_session_labels_longer_than_their_columns_are_422(api, field, limit):
    payload = session_payload()
    payload["session"][field] = "x" * (limit + 1)

    response = api.post("/sessions", payload)

    assert response.status_code == 422
    assert ["body", "payload", "session", field] in locs(response)


def test_deeply_nested_metadata_is_422(api):
    nested: dict = {}
    inner = nested
    for _ in range(50):
        inner["x"] = {}
        inner = inner["x"]
    ops = [operation("a", "x", start_s=0, duration_s=1, metadata=nested)]

    response = api.post("/sessions", session_payload(operations=ops))

    assert response.status_code == 422
    assert "nested at most" in response.content.decode()


def test_an_enormous_string_in_metadata_is_422(api):
    ops = [operation("a", "x", start_s=0, duration_s=1, metadata={"prompt": "y" * 100_000})]

    assert api.post("/sessions", session_payload(operations=ops)).status_code == 422


def test_an_enormous_session_id_is_422(api):
    assert api.post("/sessions", session_payload("s" * 10_000)).status_code == 422


@pytest.mark.parametrize("field", ["prompt_tokens", "latency_s", "cost_usd"])
def test_huge_or_negative_call_figures_are_422(api, field):
    from tests.factories import api_call

    for bad in (10**40, -1):
        call = api_call("c1")
        call[field] = bad
        assert api.post("/sessions", session_payload(api_calls=[call])).status_code == 422


@pytest.mark.parametrize(
    ("part", "whole"),
    [("cache_write_1h_tokens", "cache_write_tokens"), ("reasoning_tokens", "completion_tokens")],
)
def test_a_ledger_part_larger_than_its_whole_is_refused(api, part, whole):
    call = {"id": "c1", "prompt_tokens": 100, "completion_tokens": 10, whole: 10, part: 11}

    response = api.post("/sessions", session_payload(api_calls=[call]))

    assert response.status_code == 422
    assert ["body", "payload", "api_calls", 0] in locs(response)
