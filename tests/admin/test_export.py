"""A stored session exports as a schema-v1 payload that the ingest API takes back."""

import pytest

from metrics.models import Session
from metrics.payloads import session_payload
from tests.factories import api_call, script_payload

pytestmark = pytest.mark.django_db


def test_export_round_trips_through_the_ingest_api(api, other_api):
    sent = script_payload("s1", scenes=3)
    sent["api_calls"].append(api_call("client-priced", cost_usd=0.25))
    api.post("/sessions", sent)

    exported = session_payload(Session.objects.get())

    assert other_api.post("/sessions", exported).status_code == 201
    original, copy = Session.objects.order_by("pk")
    assert session_payload(copy) == exported
    assert (copy.total_tokens, copy.operations_count) == (original.total_tokens,
                                                          original.operations_count)
    assert api.post("/sessions", exported).status_code == 200  # a resend changes nothing
    assert session_payload(Session.objects.get(pk=original.pk)) == exported
