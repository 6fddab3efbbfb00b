"""The session table's indexes are rebuilt without the half-empty pages session writes
leave behind, and a rebuild cut off half way is cleaned up by the next (PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.db.models import Sum

from metrics import session_indexes
from metrics.models import Project, Session

# REINDEX CONCURRENTLY refuses to run inside a transaction, so these tests commit.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SESSIONS = 400
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _execute(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


@pytest.fixture
def rewritten_sessions():
    """Sessions stored, then rewritten with new figures four times each, as parts and
    analyses do, while a dashboard read holds a snapshot (so no old entry can be cleared
    early and every rewrite adds one), then vacuumed: the dead entries are gone, the split
    pages stay."""
    project = Project.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    Session.objects.bulk_create(
        Session(project=project, external_id=f"run{n:04}", status="completed",
                started_at=T0 + timedelta(minutes=n), merged_at=T0, duration_s=60.0)
        for n in range(SESSIONS))
    reader = connection.copy()
    with reader.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM metrics_session")
    try:
        for step in range(1, 5):
            for session in Session.objects.filter(project=project):
                session.cost_usd = Decimal(step) / 100
                session.total_tokens = step * 1000
                session.save(update_fields=["cost_usd", "total_tokens"])
    finally:
        with reader.cursor() as cursor:
            cursor.execute("COMMIT")
        reader.close()
    _execute("VACUUM metrics_session")
    return project


def test_a_rebuild_shrinks_the_period_index_and_keeps_every_index(rewritten_sessions):
    before = session_indexes.index_sizes()
    totals = Session.objects.aggregate(cost=Sum("cost_usd"), tokens=Sum("total_tokens"))

    call_command("rebuild_session_indexes")

    after = session_indexes.index_sizes()
    assert sorted(after) == sorted(before)  # the same indexes, all valid
    # 400 entries fit some 9 pages; the rewrites split them into several times that
    assert after["session_project_start"] * 2 < before["session_project_start"]
    assert sum(after.values()) < sum(before.values())
    # by hand: 400 sessions at $0.04 and 4,000 tokens each after the last rewrite
    assert totals == {"cost": Decimal("16.00"), "tokens": 1_600_000}
    assert Session.objects.aggregate(cost=Sum("cost_usd"), tokens=Sum("total_tokens")) == totals


def test_the_next_rebuild_drops_what_a_cut_off_one_left(rewritten_sessions):
    # A concurrent index build that fails part way leaves an invalid index behind, as a
    # REINDEX CONCURRENTLY cut off part way leaves its <index>_ccnew.
    with pytest.raises(IntegrityError):
        _execute("CREATE UNIQUE INDEX CONCURRENTLY session_project_start_ccnew "
                 "ON metrics_session (project_id)")
    valid = session_indexes.index_sizes()

    result = session_indexes.rebuild_session_indexes()

    assert result.dropped_leftovers == ["session_project_start_ccnew"]
    assert result.ran
    assert sorted(result.bytes_after) == sorted(valid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%_ccnew'")
        assert cursor.fetchone() == (0,)


def test_a_rebuild_inside_a_transaction_is_refused_with_the_reason(rewritten_sessions):
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a transaction"):
        session_indexes.rebuild_session_indexes()
