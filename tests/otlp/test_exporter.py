"""The real OpenTelemetry SDK and OTLP/HTTP protobuf exporter, configured only through the
standard environment variables, against the live server; OpenLLMetry's OpenAI
instrumentation on the real ``openai`` client against a local chat stub."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from metrics import selectors
from metrics.models import ApiCall, Operation, OtlpTrace, Session
from tests.otlp.helpers import ChatStub, ensure_price

RESOURCE = {
    "service.name": "script_generation", "service.version": "generator 1.4.2",
    "deployment.environment.name": "staging", "host.name": "render-01",
    "perfmon.episode": "ep001",
}
# gpt-4o-mini in the shipped price table: USD per million input, output, cached input
PRICE_IN, PRICE_OUT, PRICE_CACHED = Decimal("0.15"), Decimal("0.60"), Decimal("0.075")


@pytest.fixture
def otlp_env(monkeypatch, live_server, api_key):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{live_server.url}/api/otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{api_key[1]}")


def _provider(exporter, memory: InMemorySpanExporter | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    # One export per finished span: children reach the server before their parents.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if memory is not None:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider


def _write_scenes(provider: TracerProvider, client: openai.OpenAI, scenes: int) -> None:
    tracer = provider.get_tracer("generator")
    with tracer.start_as_current_span(
        "generate_full_script", attributes={"session.id": "ep001_take1"}
    ):
        for scene in range(scenes):
            # A wrapper that records the model it asked for; its child is the model call.
            with tracer.start_as_current_span(
                "scene_generation",
                attributes={"scene": scene, "gen_ai.request.model": "gpt-4o-mini"},
            ):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"scene {scene}"}]
                )


@pytest.mark.django_db(transaction=True)
def test_an_app_instrumented_only_with_opentelemetry_gets_its_tree_calls_tokens_and_cost(
    otlp_env, project
):
    ensure_price("openai", "gpt-4o-mini", str(PRICE_IN), str(PRICE_OUT), str(PRICE_CACHED))
    memory = InMemorySpanExporter()
    provider = _provider(OTLPSpanExporter(compression=Compression.Gzip), memory)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        with ChatStub(model="gpt-4o-mini", prompt_tokens=1200, cached_tokens=1000,
                      completion_tokens=100) as stub:
            client = openai.OpenAI(base_url=stub.base_url, api_key="sk-test", max_retries=0)
            _write_scenes(provider, client, scenes=3)
    finally:
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
    assert stub.requests == 3

    # The spans that ended before the root waited under the trace id, then joined the
    # session the root named: one session, no orphan.
    session = Session.objects.get()
    assert session.external_id == "ep001_take1"
    assert (session.episode.code, session.workflow, session.release) == (
        "ep001", "script_generation", "generator 1.4.2")
    assert (session.environment, session.host, session.status) == (
        "staging", "render-01", "completed")
    assert OtlpTrace.objects.get().session == session

    root = Operation.objects.get(session=session, name="generate_full_script")
    scenes = Operation.objects.filter(session=session, parent=root)
    assert sorted(scenes.values_list("name", "metadata__scene")) == [
        ("scene_generation", 0), ("scene_generation", 1), ("scene_generation", 2)]
    chats = Operation.objects.filter(session=session, parent__in=scenes)
    assert chats.count() == 3 and set(chats.values_list("name", flat=True)) == {"openai.chat"}
    assert session.started_at == root.started_at and session.ended_at == root.ended_at

    # Three model calls, not six: the wrappers stay operations.
    calls = ApiCall.objects.filter(session=session)
    assert calls.count() == 3
    assert set(calls.values_list("operation__name", flat=True)) == {"openai.chat"}
    for call in calls:
        assert (call.provider, call.model) == ("openai", "gpt-4o-mini")
        assert (call.prompt_tokens, call.cached_tokens, call.completion_tokens) == (
            1200, 1000, 100)
        assert call.total_tokens == 1300 and call.cost_source == "price_table"
    # by hand: 200 uncached input + 1,000 cached input + 100 output tokens, per call
    per_call = (200 * PRICE_IN + 1000 * PRICE_CACHED + 100 * PRICE_OUT) / 1_000_000
    assert per_call == Decimal("0.000165")
    session.refresh_from_db()
    assert session.cost_usd == 3 * per_call
    assert (session.prompt_tokens, session.completion_tokens) == (3600, 300)

    report = selectors.otlp_report(session)
    assert report["spans_received"] == 7 and report["spans_stored"] == 7
    assert report["spans_mapped_to_calls"] == 3 and report["spans_rejected"] == 0
    ignored = {row["name"] for row in report["ignored_attributes"]}
    assert "resource telemetry.sdk.name" in ignored

    # The same spans sent again (an exporter retry) change nothing but the delivery count.
    assert OTLPSpanExporter().export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    session.refresh_from_db()
    assert Operation.objects.filter(session=session).count() == 7
    assert ApiCall.objects.filter(session=session).count() == 3
    assert session.cost_usd == 3 * per_call
    assert selectors.otlp_report(session)["spans_received"] == 14


@pytest.mark.django_db(transaction=True)
def test_a_failed_root_span_fails_the_session_and_a_trace_naming_no_session_keeps_its_id(
    otlp_env, project
):
    provider = _provider(OTLPSpanExporter())
    tracer = provider.get_tracer("generator")
    with tracer.start_as_current_span("generate_full_script") as root:
        with tracer.start_as_current_span("scene_generation") as child:
            child.record_exception(ValueError("the writer's room is empty"))
            child.set_status(Status(StatusCode.ERROR))
        root.set_status(Status(StatusCode.ERROR, "script incomplete"))
    provider.shutdown()

    session = Session.objects.get()
    assert session.external_id == format(root.get_span_context().trace_id, "032x")
    assert session.status == "failed"
    child_op = Operation.objects.get(session=session, name="scene_generation")
    assert child_op.success is False
    assert child_op.error == "ValueError: the writer's room is empty"
    assert Operation.objects.get(session=session, parent=None).error == "script incomplete"


@pytest.mark.django_db(transaction=True)
def test_the_exporter_is_told_401_for_a_wrong_key(monkeypatch, live_server, project):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                       f"{live_server.url}/api/otlp/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20pm_wrong_key")
    exporter = OTLPSpanExporter(timeout=5)
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("generator").start_as_current_span("generate_full_script"):
        pass
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.FAILURE
    assert not Session.objects.exists()
