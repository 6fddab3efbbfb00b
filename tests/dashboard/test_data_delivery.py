"""The session page says how its data arrived: the SDK's own counts, or what the OTLP
receiver could not map, so a producer sees when data is missing and why."""

import pytest

from metrics.models import OtlpReport, Session
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


def page_of(viewer, session_id: str) -> str:
    return viewer.get(f"/sessions/{session_id}/").content.decode()


def test_the_sdk_report_is_shown_and_a_loss_is_called_out(viewer, api):
    payload = script_payload("s1")
    payload["session"]["sdk"] = {"version": "0.2.0", "sent": 4, "retried": 2, "spooled": 1,
                                 "resent": 1, "dropped": 3, "quarantined": 1,
                                 "operations": 4, "recording_overhead_s": 0.0125}
    assert api.post("/sessions", payload).status_code == 201

    page = page_of(viewer, "s1")

    assert "Some data may be missing." in page
    assert "dropped 3 payloads" in page and "set 1 payload aside" in page
    assert "0.0125s for 4 operations" in page
    assert ">4 / 2<" in page  # sent / retried


def test_a_healthy_sdk_report_raises_no_alarm(viewer, api):
    payload = script_payload("s1")
    payload["session"]["sdk"] = {"version": "0.2.0", "sent": 1, "operations": 4,
                                 "recording_overhead_s": 0.001}

    api.post("/sessions", payload)

    page = page_of(viewer, "s1")
    assert "How the data arrived" in page and "Some data may be missing" not in page


def test_values_the_sdk_fitted_are_counted_on_the_page(viewer, api):
    payload = script_payload("s1")
    payload["session"]["sdk"] = {"version": "0.2.0", "sent": 1, "operations": 4,
                                 "recording_overhead_s": 0.001, "fitted": 3}
    api.post("/sessions", payload)

    page = page_of(viewer, "s1")

    assert "3 values of this session were replaced by a marked stand-in" in page


def test_what_otlp_could_not_map_is_listed(viewer, api):
    api.post("/sessions", script_payload("s1"))
    OtlpReport.objects.create(session=Session.objects.get(), spans_received=12,
                              spans_rejected=2, ignored_attributes={"http.url": 5, "x.y": 9})

    page = page_of(viewer, "s1")

    assert "12 spans received" in page and "2 rejected" in page
    assert page.index("<code>x.y</code>") < page.index("<code>http.url</code>")  # most first


def test_a_session_without_reports_says_so(viewer, api):
    api.post("/sessions", script_payload("s1"))

    assert "reported nothing about its own health" in page_of(viewer, "s1")
