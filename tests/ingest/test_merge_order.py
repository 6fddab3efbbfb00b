"""Snapshots of one session merge by the client's sequence, not by arrival order."""

import pytest

from metrics.models import ApiCall, Operation, Session
from tests.factories import api_call, operation, session_payload

pytestmark = pytest.mark.django_db


def snapshot(sequence: int | None, *, hits: int, step: int, status: str = "running",
             extra_ops: tuple = (), calls: tuple = ()) -> dict:
    running = operation("gen", "generate_full_script", start_s=0, duration_s=None,
                        metadata={"step": step})
    fields = {"sequence": sequence} if sequence is not None else {}
    return session_payload(
        "snap", status=status, duration_s=None if status == "running" else 60.0,
        cache=(hits, step), operations=[running, *extra_ops], api_calls=list(calls),
        counters={"scenes_generated": step}, metadata={"step": step}, **fields,
    )


def session_figures() -> tuple:
    session = Session.objects.get()
    return (session.cache_hits, session.cache_misses, session.counters, session.metadata,
            session.client_sequence)


def test_a_late_older_snapshot_changes_nothing_at_session_level(api):
    assert api.post("/sessions", snapshot(1, hits=10, step=1)).status_code == 201
    assert api.post("/sessions", snapshot(3, hits=30, step=3)).status_code == 200
    before = session_figures()

    late = snapshot(2, hits=20, step=2,
                    extra_ops=(operation("scene1", "scene_generation", start_s=1, duration_s=2,
                                         parent_id="gen"),),
                    calls=(api_call("c1", operation_id="scene1"),))
    assert api.post("/sessions", late).status_code == 200

    assert before == (30, 3, {"scenes_generated": 3}, {"step": 3}, 3)
    assert session_figures() == before
    # the running operation keeps the newer snapshot's values
    assert Operation.objects.get(client_id="gen").metadata == {"step": 3}
    # what only the late snapshot carried is still added
    assert Operation.objects.get(client_id="scene1").parent.client_id == "gen"
    assert ApiCall.objects.get().client_id == "c1"
    assert Session.objects.get().api_calls_count == 1


def test_a_newer_snapshot_wins_whatever_the_arrival_order(api):
    for sequence in (5, 2, 7, 6, 0):
        api.post("/sessions", snapshot(sequence, hits=sequence * 10, step=sequence))

    assert session_figures() == (70, 7, {"scenes_generated": 7}, {"step": 7}, 7)
    assert Operation.objects.get(client_id="gen").metadata == {"step": 7}


def test_a_resend_of_the_latest_snapshot_is_applied_again(api):
    api.post("/sessions", snapshot(4, hits=40, step=4))
    api.post("/sessions", snapshot(4, hits=40, step=4))

    assert session_figures() == (40, 4, {"scenes_generated": 4}, {"step": 4}, 4)


def test_the_final_snapshot_is_kept_when_an_older_running_one_arrives_late(api):
    final = snapshot(9, hits=90, step=9, status="completed")
    final["operations"][0] |= {"ended_at": "2026-11-20T10:01:00+00:00", "duration_s": 60.0,
                               "success": True}
    api.post("/sessions", final)
    api.post("/sessions", snapshot(8, hits=80, step=8))

    session = Session.objects.get()
    assert (session.status, session.cache_hits, session.client_sequence) == ("completed", 90, 9)
    gen = Operation.objects.get(client_id="gen")
    assert (gen.duration_s, gen.metadata) == (60.0, {"step": 9})


def test_without_a_sequence_the_later_arrival_wins(api):
    """The documented fallback: schema v1 has no other client clock for a snapshot."""
    api.post("/sessions", snapshot(None, hits=30, step=3))
    api.post("/sessions", snapshot(None, hits=20, step=2))

    assert session_figures() == (20, 2, {"scenes_generated": 2}, {"step": 2}, None)


def test_a_sequence_must_be_a_non_negative_integer(api):
    for bad in (-1, "3", 2.0, True):
        assert api.post("/sessions", snapshot(None, hits=1, step=1)
                        | {"session": snapshot(None, hits=1, step=1)["session"]
                           | {"sequence": bad}}).status_code == 422
    assert Session.objects.count() == 0
