"""A resend writes only the rows that changed: a running session's snapshots resend every
finished row, and each rewrite would leave a dead row version and new index entries."""

import pytest
from django.db import connection

from metrics.models import ApiCall, Operation, Session
from tests.factories import operation, script_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _post(api, payload) -> None:
    assert api.post("/sessions", payload).status_code in (200, 201)


def _row_places(model) -> dict[str, str]:
    """Each row's client id -> where its current version lies (ctid): a rewritten row,
    even in the same transaction, is a new version somewhere else."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_id, ctid::text FROM {model._meta.db_table}")
        return dict(cursor.fetchall())


def test_resending_a_snapshot_rewrites_no_unchanged_row(api):
    payload = script_payload("run1", scenes=4, status="running")
    _post(api, payload)
    ops, calls = _row_places(Operation), _row_places(ApiCall)

    _post(api, payload)

    assert _row_places(Operation) == ops
    assert _row_places(ApiCall) == calls


def test_a_resend_rewrites_the_rows_that_changed_and_only_those(api):
    payload = script_payload("run1", scenes=4, status="running")
    payload["operations"][-1] = operation("scene3", "scene_generation", start_s=31.0,
                                          duration_s=None, parent_id="root")
    _post(api, payload)
    ops = _row_places(Operation)

    payload["operations"][-1] = operation("scene3", "scene_generation", start_s=31.0,
                                          duration_s=9.0, parent_id="root")  # now finished
    _post(api, payload)

    after = _row_places(Operation)
    assert {client_id for client_id in ops if after[client_id] != ops[client_id]} == {"scene3"}
    stored = Operation.objects.get(client_id="scene3")
    assert stored.duration_s == 9.0 and stored.success is True
    assert Session.objects.get().operations_count == 5
