"""The mapping on its own: what it builds is valid schema v1, and the ledger rules per
convention, without a server in between."""

from __future__ import annotations

import dataclasses
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ingest.otlp import genai, mapping
from ingest.otlp.decode import decode_json, decode_protobuf
from ingest.schemas import ApiCallIn, OperationIn, SessionPayload
from tests.otlp.helpers import T0_NS, export_request, span, span_id


def _payload(draft: mapping.Draft) -> dict:
    return {
        "schema_version": 1,
        "session": {"id": "ep001", "started_at": draft.started_at.isoformat(),
                    "ended_at": draft.ended_at.isoformat(), **draft.fields},
        "operations": [dataclasses.asdict(op) for op in draft.operations],
        "api_calls": [dataclasses.asdict(call) for call in draft.api_calls],
    }


def test_what_the_mapping_builds_passes_schema_v1_validation():
    many = {f"attr{n}": "v" * 256 for n in range(100)}  # more than metadata may hold
    spans = [
        span(span_id(1), name="n" * 500, attrs={**many, "perfmon.workflow": "w" * 300}),
        span(span_id(2), parent=span_id(1), name="chat", error="e" * 20_000, attrs={
            "gen_ai.system": "OpenAI" + "x" * 100, "gen_ai.request.model": "m" * 300,
            "gen_ai.usage.input_tokens": 2**60, "gen_ai.usage.reasoning_tokens": 50,
            "gen_ai.usage.output_tokens": 10, "llm.cost.total": 10**12,
            "perfmon.usage.cache_write_1h_tokens": 9, "gen_ai.usage.cache_creation.input_tokens": 4,
        }),
    ]
    draft = mapping.draft(decode_json(json.dumps(export_request(spans)).encode()).spans)
    assert not draft.rejected
    payload = SessionPayload.model_validate(_payload(draft))  # raises if any limit is broken
    assert len(payload.operations[0].metadata) == mapping.MAX_METADATA_KEYS
    call = payload.api_calls[0]
    # the input count is out of range, so only the cache write is known of the input
    assert call.prompt_tokens == 4 and call.cost_usd is None
    assert draft.ignored["gen_ai.usage.input_tokens (unreadable value)"] == 1
    assert call.completion_tokens == 60 and call.reasoning_tokens == 50  # 10 + 50 apart
    assert call.cache_write_1h_tokens == 4
    assert draft.ignored["attr99"] == 1


def test_the_mappings_rows_have_exactly_the_schema_v1_fields():
    for row, schema in ((mapping.OperationRow, OperationIn), (mapping.ApiCallRow, ApiCallIn)):
        assert [f.name for f in dataclasses.fields(row)] == list(schema.model_fields)


def test_protobuf_and_json_of_the_same_span_decode_alike():
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="script_generation")))
    pb = resource_spans.scope_spans.add().spans.add()
    pb.trace_id, pb.span_id = bytes.fromhex("a" * 32), bytes.fromhex(span_id(1))
    pb.name, pb.start_time_unix_nano, pb.end_time_unix_nano = "step", T0_NS, T0_NS + 10**9
    pb.attributes.append(KeyValue(key="scene", value=AnyValue(int_value=3)))
    pb.attributes.append(KeyValue(key="ratio", value=AnyValue(double_value=float("nan"))))
    from_pb = decode_protobuf(request.SerializeToString()).spans[0]
    body = export_request([span(span_id(1), attrs={"scene": 3})])
    from_json = decode_json(json.dumps(body).encode()).spans[0]
    for field in ("trace_id", "span_id", "parent_id", "name", "start_ns", "end_ns",
                  "attributes"):
        assert getattr(from_pb, field) == getattr(from_json, field)
    assert from_pb.resource.attributes == from_json.resource.attributes
    assert from_pb.unreadable == ["ratio"]


@pytest.mark.parametrize(("attributes", "prompt", "completion"), [
    # semconv: input includes cache reads and writes
    ({"gen_ai.usage.input_tokens": 900, "gen_ai.usage.cache_read.input_tokens": 600,
      "gen_ai.usage.cache_creation.input_tokens": 200, "gen_ai.usage.output_tokens": 5},
     900, 5),
    # input smaller than the cache alone: the sender left the cache out
    ({"gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_read.input_tokens": 600,
      "gen_ai.usage.cache_creation.input_tokens": 200, "gen_ai.usage.output_tokens": 5},
     900, 5),
    # total = input + output + cache: the sender left the cache out
    ({"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 600,
      "gen_ai.usage.output_tokens": 5, "gen_ai.usage.total_tokens": 1605}, 1600, 5),
    # total = input + output: the cache was inside the input
    ({"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 600,
      "gen_ai.usage.output_tokens": 5, "gen_ai.usage.total_tokens": 1005}, 1000, 5),
    # reasoning larger than the output: counted apart, added to it
    ({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
      "gen_ai.usage.reasoning.output_tokens": 20}, 10, 25),
    # the current name outranks the older one
    ({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.prompt_tokens": 99}, 10, 0),
])
def test_the_ledger_rules_per_convention(attributes, prompt, completion):
    usage = genai.usage(attributes, bad := [])
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
    assert usage.total_tokens == prompt + completion and bad == []


@pytest.mark.parametrize(("attributes", "is_call"), [
    ({"gen_ai.request.model": "gpt-4o-mini"}, True),
    ({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"}, False),
    ({"traceloop.span.kind": "workflow", "gen_ai.usage.input_tokens": 5}, False),
    ({"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 5}, False),
    ({"openinference.span.kind": "LLM", "llm.token_count.prompt": 5}, True),
    ({"http.method": "POST"}, False),
])
def test_which_spans_are_model_calls(attributes, is_call):
    assert genai.is_model_call(attributes) is is_call


def test_the_session_id_is_the_first_usable_name_span_before_resource():
    decoded = decode_json(json.dumps(export_request(
        [span(span_id(1), attrs={"gen_ai.conversation.id": "conv-1"}),
         span(span_id(2), attrs={"perfmon.session.id": "has space", "session.id": "s-2"}),
         span(span_id(3), attrs={"session.id": 42})],
        resource={"session.id": "ep001_take2"})).encode())
    first, second, third = decoded.spans
    assert mapping.named_session(first) == "ep001_take2"  # session.id outranks conversation
    assert mapping.named_session(second) == "s-2"  # an unusable id is passed over
    assert mapping.named_session(third) == "42"
