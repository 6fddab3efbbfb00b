"""Spans of one trace arriving at once in concurrent requests, in either order, end up
in one session; the per-trace lock leaves no orphan and no row twice."""

from __future__ import annotations

import json
import random
import threading

import pytest
import requests

from metrics.models import ApiCall, Operation, OtlpTrace, Session
from tests.otlp.helpers import export_request, span, span_id

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
TRACES = 8


def _parts(n: int) -> list[bytes]:
    trace = f"{n + 1:032x}"
    chat = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    children = [span(span_id(10 + i), trace_id=trace, parent=span_id(1), name="chat",
                     attrs=chat) for i in range(3)]
    root = span(span_id(1), trace_id=trace, name="generate_full_script", start_s=0, end_s=2,
                attrs={"session.id": f"ep{n:03d}_take1"})
    return [json.dumps(export_request(part)).encode()
            for part in ([children[0]], [children[1], children[2]], [root], [root, *children])]


def test_concurrent_parts_of_many_traces_make_one_session_each(live_server, api_key):
    bodies = [body for n in range(TRACES) for body in _parts(n)]
    random.Random(13).shuffle(bodies)
    statuses: list[int] = []
    lock = threading.Lock()
    queue = iter(bodies)

    def client() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                response = http.post(
                    f"{live_server.url}/api/otlp/v1/traces", data=body, timeout=60,
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {api_key[1]}"})
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * len(bodies)
    assert sorted(Session.objects.values_list("external_id", flat=True)) == [
        f"ep{n:03d}_take1" for n in range(TRACES)]
    assert OtlpTrace.objects.filter(named=True).count() == TRACES
    for session in Session.objects.all():
        assert Operation.objects.filter(session=session).count() == 4
        assert ApiCall.objects.filter(session=session).count() == 3
        assert session.status == "completed"
