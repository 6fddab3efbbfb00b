"""Generated hostile text in every kind of stored string: refused with its path, or stored
exactly as sent, on SQLite and on PostgreSQL alike; never a 5xx.

Strings mix NUL, lone surrogates, control characters, astral characters and ordinary text
(Hypothesis draws them), each put into one text field of an otherwise valid session.
"""

import copy
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.models import ApiCall, Operation, Session
from tests.factories import script_payload

pytestmark = pytest.mark.django_db

EXAMPLES = 150

# (wire path, how to read the stored value back)
FIELDS = {
    ("session", "workflow"): lambda s: s.workflow,
    ("session", "release"): lambda s: s.release,
    ("session", "environment"): lambda s: s.environment,
    ("session", "host"): lambda s: s.host,
    ("session", "tags", 0): lambda s: s.tags[0],
    ("session", "metadata", "model_family"): lambda s: s.metadata["model_family"],
    ("operations", 1, "name"): lambda s: Operation.objects.get(session=s, client_id="scene0").name,
    ("operations", 1, "error"): lambda s: Operation.objects.get(session=s,
                                                                client_id="scene0").error,
    ("operations", 1, "metadata", "scene"): lambda s: Operation.objects.get(
        session=s, client_id="scene0").metadata["scene"],
    ("api_calls", 0, "model"): lambda s: ApiCall.objects.get(session=s,
                                                            client_id="scene0-c0").model,
    ("api_calls", 0, "error_message"): lambda s: ApiCall.objects.get(
        session=s, client_id="scene0-c0").error_message,
    ("api_calls", 0, "prompt_hash"): lambda s: ApiCall.objects.get(
        session=s, client_id="scene0-c0").prompt_hash,
}
# Where the schema reports a refusal: free-form metadata is checked as one mapping.
REPORTED_AT = {path: path[:2] if "metadata" in path else path for path in FIELDS}

_any_text = st.text(st.characters(codec="utf-8"), max_size=20)  # astral ones included
_SPECIAL = ["\x00", "\ud800", "\udfff", "\x7f", "\u2028", "🎬", "\U0010ffff", ""]
# Ordinary text around one special character: NUL and lone surrogates in 3 draws of 8.
hostile_text = st.tuples(_any_text, st.sampled_from(_SPECIAL), _any_text).map("".join).filter(
    bool)
_ids = itertools.count()


def with_text(path: tuple, text: str) -> dict:
    payload = copy.deepcopy(script_payload(f"fuzz-{next(_ids)}"))
    node = payload
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = text
    return payload


def test_hostile_text_is_refused_at_its_path_or_stored_exactly(api):
    outcomes = {"stored": 0, "refused": 0}

    @given(path=st.sampled_from(sorted(FIELDS, key=str)), text=hostile_text)
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(path, text):
        payload = with_text(path, text)
        response = api.post("/sessions", payload)
        if response.status_code == 201:
            session = Session.objects.get(external_id=payload["session"]["id"])
            assert FIELDS[path](session) == text
            outcomes["stored"] += 1
            return
        assert response.status_code == 422, (path, text, response.status_code)
        expected = ["body", "payload", *REPORTED_AT[path]]
        assert expected in [e["loc"][: len(expected)] for e in response.json()["detail"]]
        assert "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)
        outcomes["refused"] += 1

    check()
    print(f"hostile text fuzz: {outcomes}")  # figures for docs/reliability.md (pytest -s)
    assert outcomes["stored"] and outcomes["refused"]  # both paths were exercised
