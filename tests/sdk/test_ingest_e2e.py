"""The SDK's exporter against the real ingest API (Django live server)."""

from __future__ import annotations

import pytest

import perfmon
from perfmon import _config, get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@pytest.mark.django_db(transaction=True)
def test_sessions_from_the_sdk_are_stored_and_resending_changes_nothing(
    live_server, api_key, tmp_path
):
    from metrics.models import ApiCall, Operation, Session

    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0)
    with monitor.session("ep001_take1", episode="ep001", workflow="script_generation",
                         tags=["pilot"]) as metrics:
        with monitor.operation("generate_full_script"):
            for scene in range(3):
                with monitor.operation("scene_generation", scene=scene):
                    monitor.record_cache_hit("llm")
                    monitor.record_api_call(model="gpt-4o-mini", provider="openai",
                                            prompt_tokens=700, completion_tokens=130,
                                            latency_s=1.2, prompt=f"scene {scene}")
        monitor.increment("scenes_generated", 3)
    assert perfmon.flush(10)
    assert perfmon.stats()["sent"] == 1 and perfmon.stats()["rejected"] == 0

    stored = Session.objects.get(external_id="ep001_take1")
    assert stored.status == "completed" and stored.cache_hits == 3
    assert stored.counters["scenes_generated"] == 3
    assert stored.episode.code == "ep001"
    operations = Operation.objects.filter(session=stored)
    assert operations.count() == 4
    root = operations.get(name="generate_full_script")
    assert set(operations.filter(parent=root).values_list("name", flat=True)) == {
        "scene_generation"
    }
    calls = ApiCall.objects.filter(session=stored)
    assert calls.count() == 3
    assert all(call.operation is not None for call in calls)

    assert _config.get_exporter().submit(metrics)  # the same session again
    assert perfmon.flush(10)
    assert perfmon.stats()["sent"] == 2
    assert Operation.objects.filter(session=stored).count() == 4
    assert ApiCall.objects.filter(session=stored).count() == 3
    assert Session.objects.filter(external_id="ep001_take1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_session_split_into_parts_arrives_whole(live_server, api_key, tmp_path):
    from metrics.models import ApiCall, Operation, Session

    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0, max_payload_bytes=40_000)

    @perfmon.monitor_performance("render_line")
    def render_line() -> None:
        return None

    with monitor.session("ep001_split", episode="ep001") as metrics:
        for scene in range(30):
            with monitor.operation("scene_generation", scene=scene):
                for line in range(20):
                    with monitor.operation("line", text="z" * 50, n=line):
                        render_line()
                monitor.record_api_call(model="gpt-4o-mini", provider="openai",
                                        prompt_tokens=70, completion_tokens=13)
    assert perfmon.flush(30)
    stats = perfmon.stats()
    assert stats["sent"] > 1 and stats["rejected"] == 0 and stats["dropped"] == 0

    stored = Session.objects.get(external_id="ep001_split")
    assert stored.status == "completed" and stored.ended_at is not None
    assert stored.split_parts["received"] == list(range(1, stats["sent"] + 1))
    operations = Operation.objects.filter(session=stored)
    assert operations.count() == len(metrics.operations) == 30 * 41
    assert operations.filter(name="line", parent__name="scene_generation").count() == 600
    assert operations.filter(name="render_line", parent__name="line").count() == 600
    calls = ApiCall.objects.filter(session=stored)
    assert calls.count() == 30
    assert all(call.operation is not None for call in calls)
