"""Hostile and broken OTLP input: each bad span is rejected on its own and counted, bad
bodies get the OTLP answers, and nothing half-written is left."""

from __future__ import annotations

import gzip
import json

import pytest
import requests
from django.core.cache import cache
from django.test import override_settings
from google.rpc import status_pb2

from bench.servers import Gunicorn, create_api_key, server_env
from metrics.models import ApiCall, Operation, Session
from tests.otlp.helpers import T0_NS, export_request, span, span_id
from tests.private_services import stored

URL = "/api/otlp/v1/traces"


@pytest.fixture
def post(live_server, api_key):
    def post(data: bytes, content_type: str = "application/json", **headers: str):
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {api_key[1]}",
                   **headers}
        return requests.post(f"{live_server.url}{URL}", data=data, headers=headers,
                             timeout=120)

    return post


def _json(body) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.django_db(transaction=True)
def test_spans_with_bad_ids_or_impossible_times_are_rejected_and_the_rest_stored(post):
    good = span(span_id(1), name="generate_full_script")
    bad = [
        span("xyz", name="short span id"),
        span(span_id(2), trace_id="z" * 32, name="trace id not hex"),
        span("0" * 16, name="all-zero span id"),
        span(span_id(3), parent="12", name="bad parent id"),
        span(span_id(4), name="no start", startTimeUnixNano="0"),
        span(span_id(5), name="negative", startTimeUnixNano="-5"),
        span(span_id(6), name="past 2^64", startTimeUnixNano="99999999999999999999999"),
        span(span_id(7), name="a float", startTimeUnixNano=1.5e18),
        span(span_id(8), name="ends first", start_s=5, end_s=1),
        "not an object",
    ]
    response = post(_json(export_request([good, *bad])))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == len(bad)
    assert partial["errorMessage"].startswith(f"{len(bad)} spans rejected: ")
    assert "span id is not 16 hex digits" in partial["errorMessage"]
    assert list(Operation.objects.values_list("name", flat=True)) == ["generate_full_script"]
    # The session's report counts the rejected spans of its trace, whether they failed
    # in decoding or in mapping: all but the other trace's and the one that is no object.
    report = Session.objects.get().otlp_report
    assert (report.spans_received, report.spans_rejected) == (len(bad) - 1, len(bad) - 2)


@pytest.mark.django_db(transaction=True)
def test_attributes_of_the_wrong_type_are_dropped_and_reported_not_fatal(post):
    body = export_request([span(span_id(1), name="chat", attrs={
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": -3})])
    raw = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    raw["attributes"] += [
        {"key": "scene", "value": {"intValue": "three"}},
        {"key": "ratio", "value": {"doubleValue": "NaN"}},
        {"key": "pilot", "value": {"boolValue": "yes"}},
        {"key": "title", "value": {"stringValue": 5}},
        {"key": "unset", "value": {}},
        {"value": {"stringValue": "no key"}},
    ]
    raw["status"] = "broken"
    raw["name"] = 42
    response = post(_json(body))
    assert response.status_code == 200 and response.json() == {}
    op = Operation.objects.get()
    assert op.name == "(unnamed span)" and op.metadata == {} and op.success is True
    call = ApiCall.objects.get()
    assert (call.prompt_tokens, call.completion_tokens) == (100, 0)
    ignored = Session.objects.get().otlp_report.ignored_attributes
    for name in ("scene", "ratio", "pilot", "title", "gen_ai.usage.output_tokens", "status",
                 "(attribute without a key)"):
        assert ignored[f"{name} (unreadable value)"] == 1


@pytest.mark.django_db(transaction=True)
def test_ten_thousand_spans_in_one_request_whose_parent_never_arrives(post):
    trace = "c" * 32
    spans = [span(span_id(n), trace_id=trace, parent="f" * 16, name="dialogue_line",
                  start_s=n * 0.01, end_s=n * 0.01 + 0.005,
                  attrs={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                         "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3})
             for n in range(1, 10_001)]
    response = post(gzip.compress(_json(export_request(spans))), **{"Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.json() == {}
    session = Session.objects.get(external_id=trace)
    assert (session.operations_count, session.api_calls_count) == (10_000, 10_000)
    assert (session.prompt_tokens, session.completion_tokens) == (70_000, 30_000)
    # no root has arrived: the session runs on, its spans wait for their parent
    assert session.status == "running"
    assert Operation.objects.filter(parent__isnull=True, parent_client_id="f" * 16).count() == (
        10_000)
    # the parent arrives at last and the waiting spans link to it
    root = span("f" * 16, trace_id=trace, name="generate_full_script", start_s=0, end_s=200)
    assert post(_json(export_request([root]))).status_code == 200
    root_op = Operation.objects.get(client_id="f" * 16)
    assert Operation.objects.filter(parent=root_op).count() == 10_000
    session.refresh_from_db()
    assert session.status == "completed" and session.duration_s == pytest.approx(200)


@pytest.mark.django_db(transaction=True)
def test_undecodable_bodies_get_400_in_the_requests_encoding(post):
    response = post(b"\xff\x00 not protobuf", "application/x-protobuf")
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 3 and "ExportTraceServiceRequest" in status.message
    for body in (b"{not json", b"[1, 2]", b'{"resourceSpans": 5}', b'{"a": NaN}'):
        response = post(body)
        assert response.status_code == 400 and response.json()["code"] == 3
    assert post(b"{}").json() == {}  # an empty export is fine
    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_wrong_key_wrong_type_and_broken_gzip(live_server, post):
    body = _json(export_request([span(span_id(1))]))
    anonymous = requests.post(f"{live_server.url}{URL}", data=body,
                              headers={"Content-Type": "application/json"}, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 16
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert post(body, "text/plain").status_code == 415
    assert post(body, **{"Content-Encoding": "br"}).status_code == 415
    assert post(b"\x1f\x8b broken", **{"Content-Encoding": "gzip"}).status_code == 400
    assert requests.get(f"{live_server.url}{URL}", timeout=30).status_code == 405
    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(INGEST_MAX_BODY_BYTES=50_000)
def test_bodies_over_the_limit_get_413_even_when_they_inflate_to_it(post):
    spans = [span(span_id(n), name="x" * 100) for n in range(1, 500)]
    raw = _json(export_request(spans))
    assert len(raw) > 50_000 and len(gzip.compress(raw)) < 50_000
    assert post(raw).status_code == 413
    assert post(gzip.compress(raw), **{"Content-Encoding": "gzip"}).status_code == 413
    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=2)
def test_over_the_keys_rate_limit_gets_429_with_retry_after(post, api):
    cache.clear()
    body = _json(export_request([span(span_id(1))]))
    assert post(body).status_code == 200
    assert api.get("/sessions").status_code == 200  # one limit for both APIs
    refused = post(body, "application/x-protobuf")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert status_pb2.Status.FromString(refused.content).code == 8
    cache.clear()


def _spans_at(offset_s: float) -> bytes:
    body = export_request([span(span_id(1), name="generate_full_script",
                                attrs={"session.id": "ep009_take1"})])
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = str(
        T0_NS + int(offset_s * 1e9))
    return _json(body)


@pytest.mark.postgres
def test_503_with_retry_after_while_the_database_is_down_then_the_resend_is_stored(
        cluster, database):
    env = server_env(database)
    key = create_api_key(env, "otel")
    server = Gunicorn(env, workers=1).start()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    try:
        cluster.stop()
        try:
            down = requests.post(f"{server.url}{URL}", data=_spans_at(0), headers=headers,
                                 timeout=30)
        finally:
            cluster.start()
        assert down.status_code == 503 and int(down.headers["Retry-After"]) >= 1
        again = requests.post(f"{server.url}{URL}", data=_spans_at(0), headers=headers,
                              timeout=30)
        if again.status_code == 503:  # the worker's first query after the restart
            again = requests.post(f"{server.url}{URL}", data=_spans_at(0), headers=headers,
                                  timeout=30)
        assert again.status_code == 200
    finally:
        server.stop()
    assert stored(database, "SELECT external_id, operations_count FROM metrics_session") == [
        ("ep009_take1", 1)]
