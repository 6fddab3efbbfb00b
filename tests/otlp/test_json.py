"""Hand-made OTLP JSON over real HTTP: the attribute conventions of each instrumentation,
order and resends, and the OTLP answers."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
import requests

from metrics.models import (
    ApiCall,
    DailyCost,
    Episode,
    EpisodeCost,
    Operation,
    OtlpTrace,
    Session,
)
from tests.otlp.helpers import ensure_price, export_request, span, span_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def send(live_server, api_key):
    def send(body, *, key: str | None = api_key[1], gzipped: bool = False, **headers):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **headers}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if gzipped:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return requests.post(f"{live_server.url}/api/otlp/v1/traces", data=data,
                             headers=headers, timeout=120)

    return send


# (attributes as an instrumentation writes them, the ledger they mean)
VARIANTS = {
    "GenAI semconv, current names (input includes the cache)": (
        {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
         "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1200,
         "gen_ai.usage.output_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 1000,
         "gen_ai.usage.reasoning.output_tokens": 40},
        ("openai", "gpt-4o-mini", 1200, 100, 1000, 0, 40)),
    "GenAI semconv, older names (gen_ai.system, prompt/completion tokens)": (
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
         "gen_ai.usage.prompt_tokens": 1200, "gen_ai.usage.completion_tokens": 100,
         "gen_ai.usage.cache_read_input_tokens": 1000},
        ("openai", "gpt-4o-mini", 1200, 100, 1000, 0, 0)),
    "OpenLLMetry llm.usage.*": (
        {"gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini",
         "llm.usage.prompt_tokens": "1200", "llm.usage.completion_tokens": 100,
         "llm.usage.total_tokens": 1300, "llm.usage.reasoning_tokens": 30},
        ("openai", "gpt-4o-mini", 1200, 100, 0, 0, 30)),
    "OpenInference llm.token_count.* (prompt includes the cache)": (
        {"llm.provider": "anthropic", "llm.model_name": "claude-sonnet-4-5",
         "openinference.span.kind": "LLM", "llm.token_count.prompt": 5000,
         "llm.token_count.completion": 200, "llm.token_count.prompt_details.cache_read": 3000,
         "llm.token_count.prompt_details.cache_write": 1000,
         "llm.token_count.completion_details.reasoning": 50},
        ("anthropic", "claude-sonnet-4-5", 5000, 200, 3000, 1000, 50)),
    "Anthropic's input_tokens copied as is (smaller than the cache counts)": (
        {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
         "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
         "gen_ai.usage.cache_read.input_tokens": 3000,
         "gen_ai.usage.cache_creation.input_tokens": 1000},
        ("anthropic", "claude-sonnet-4-5", 5000, 200, 3000, 1000, 0)),
    "input without the cache, told by a total that adds the cache counts": (
        {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
         "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 100,
         "gen_ai.usage.cache_read_input_tokens": 1000,
         "gen_ai.usage.cache_write_input_tokens": 500, "gen_ai.usage.total_tokens": 6600},
        ("anthropic", "claude-sonnet-4-5", 6500, 100, 1000, 500, 0)),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_each_conventions_tokens_land_in_the_ledger(send, name):
    attrs, expected = VARIANTS[name]
    response = send(export_request([span(span_id(1), name="chat", attrs=attrs)]))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}  # everything accepted: no partial_success
    call = ApiCall.objects.get()
    assert (call.provider, call.model, call.prompt_tokens, call.completion_tokens,
            call.cached_tokens, call.cache_write_tokens, call.reasoning_tokens) == expected
    assert call.total_tokens == expected[2] + expected[3]


def test_anthropic_cache_reads_and_writes_are_priced_by_the_server(send):
    attrs, _ = VARIANTS["OpenInference llm.token_count.* (prompt includes the cache)"]
    ensure_price("anthropic", "claude-sonnet-4-5", "3.00", "15.00", "0.30", "3.75")
    send(export_request([span(span_id(1), name="chat", attrs=attrs)],
                        resource={"session.id": "ep003_take1"}))
    call = ApiCall.objects.get()
    # claude-sonnet-4-5, USD per million: input 3, output 15, cache read 0.30, write 3.75
    by_hand = (1000 * Decimal("3") + 200 * Decimal("15") + 3000 * Decimal("0.30")
               + 1000 * Decimal("3.75")) / 1_000_000
    assert by_hand == Decimal("0.01065")
    assert call.cost_source == "price_table" and call.cost_usd == by_hand
    assert Session.objects.get(external_id="ep003_take1").cost_usd == by_hand


def test_a_cost_the_client_sent_is_kept_as_client_priced(send):
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 10,
             "llm.cost.total": 0.25}
    send(export_request([span(span_id(1), name="chat", attrs=attrs)]))
    call = ApiCall.objects.get()
    assert call.cost_source == "client" and call.cost_usd == Decimal("0.25")


def test_children_first_then_the_root_naming_the_session_leaves_no_orphan(send):
    trace = "b" * 32
    chat = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 130}
    first = [span(span_id(2), trace_id=trace, parent=span_id(1), name="scene_generation",
                  start_s=1, end_s=2),
             span(span_id(3), trace_id=trace, parent=span_id(2), name="chat", start_s=1.1,
                  end_s=1.9, attrs=chat)]
    assert send(export_request(first, resource={"perfmon.episode": "ep002"})).ok
    waiting = Session.objects.get()
    assert waiting.external_id == trace and waiting.status == "running"
    assert waiting.analyzed_at is not None  # analysed: its cost is in the rollups
    assert EpisodeCost.objects.get().calls == 1

    root = span(span_id(1), trace_id=trace, name="generate_full_script", start_s=0, end_s=3,
                attrs={"session.id": "ep002_take1"})
    assert send(export_request([root], resource={"perfmon.episode": "ep002"})).ok

    session = Session.objects.get()
    assert session.external_id == "ep002_take1" and session.status == "completed"
    assert session.duration_s == pytest.approx(3.0)
    assert Operation.objects.get(client_id=span_id(3)).parent.parent.name == (
        "generate_full_script")
    assert ApiCall.objects.get().operation.name == "chat"
    # the waiting session's share of the rollups moved with it, nothing counted twice
    assert [(r.episode, r.calls) for r in EpisodeCost.objects.all()] == [("ep002", 1)]
    assert sum(r.calls for r in DailyCost.objects.all()) == 1
    assert OtlpTrace.objects.get(trace_id=trace).named is True
    assert Episode.objects.get(code="ep002").latest_completed_session == session

    # a late child of the same trace, naming nothing, joins the named session
    late = span(span_id(4), trace_id=trace, parent=span_id(1), name="polish", start_s=2,
                end_s=2.5)
    assert send(export_request([late])).ok
    assert Session.objects.get().operations_count == 4


@pytest.mark.parametrize("wrapper_first", [True, False])
def test_a_wrapper_span_over_a_model_call_is_counted_once_whichever_arrives_first(
        send, wrapper_first):
    usage = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 130}
    wrapper = span(span_id(1), name="llm_step", attrs=usage)  # sums its child's usage
    call = span(span_id(2), parent=span_id(1), name="openai.chat", attrs=usage)
    for part in ([wrapper], [call]) if wrapper_first else ([call], [wrapper]):
        assert send(export_request(part)).ok
    assert list(ApiCall.objects.values_list("client_id", flat=True)) == [span_id(2)]
    assert Session.objects.get().prompt_tokens == 700


def test_spans_sent_twice_and_in_several_requests_are_stored_once(send):
    spans = [span(span_id(n), parent=span_id(1) if n > 1 else None, name=f"op{n}",
                  attrs={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                         "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}
                  if n > 1 else {})
             for n in range(1, 6)]
    assert send(export_request(spans[:3])).ok
    assert send(export_request(spans[2:] + spans[2:])).ok  # overlap, and a duplicate
    assert send(export_request(spans)).ok
    session = Session.objects.get()
    assert session.operations_count == 5 and session.api_calls_count == 4
    assert session.prompt_tokens == 40


def test_the_session_detail_reports_what_was_not_mapped(send, api):
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 100,
             "gen_ai.prompt.0.content": "Write scene 1", "gen_ai.prompt.1.content": "Again",
             "scene": 1, "gen_ai.usage.cache_read.input_tokens": {"bad": "type"}}
    body = export_request([span(span_id(1), name="chat", attrs=attrs)],
                          resource={"session.id": "ep004_take1", "os.type": "linux"})
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][-1]["value"] = {
        "intValue": "many"}
    assert send(body).ok
    detail = api.get("/sessions/ep004_take1").json()
    report = detail["otlp"]
    assert report["spans_received"] == 1 and report["spans_mapped_to_calls"] == 1
    assert report["spans_stored"] == 1 and report["spans_rejected"] == 0
    ignored = {row["name"]: row["spans"] for row in report["ignored_attributes"]}
    assert ignored == {
        "gen_ai.prompt.N.content": 2,  # prompt text is never stored
        "gen_ai.usage.cache_read.input_tokens (unreadable value)": 1,
        "resource os.type": 1,
    }
    assert Operation.objects.get().metadata == {"scene": 1}
    assert ApiCall.objects.get().cached_tokens == 0


def test_sessions_sent_as_schema_v1_have_no_otlp_report(api):
    api.post("/sessions", {"schema_version": 1, "session": {
        "id": "ep001_sdk", "started_at": "2026-11-20T10:00:00+00:00"}})
    assert api.get("/sessions/ep001_sdk").json()["otlp"] is None
