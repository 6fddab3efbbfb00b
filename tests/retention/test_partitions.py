"""Monthly partitions of the raw tables on PostgreSQL: the migration path, the partitions
made ahead, and retention dropping a whole month."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection

from metrics import partitions, retention
from metrics.models import ApiCall, Operation, Session
from tests.factories import big_payload
from tests.retention.migrating import migrate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

BEFORE = ("metrics", "0020_cost_write_1h")


def _today() -> date:
    return datetime.now(UTC).date()


def _sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _partition_of(model, pk: int) -> str:
    return _sql(f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s",
                [pk])[0][0]


@pytest.fixture
def session_keys():
    """Put the session sequence back after a test that moves it (sequences ignore
    rollbacks)."""
    (sequence,), = _sql("SELECT pg_get_serial_sequence('metrics_session', 'id')")
    (last, called), = _sql(f"SELECT last_value, is_called FROM {sequence}")
    yield sequence
    _sql("SELECT setval(%s, %s, %s)", [sequence, last, called])


@pytest.mark.django_db(transaction=True)
def test_migration_partitions_an_existing_database_keeping_rows_keys_and_links(
    api, session_keys
):
    # A database from before: small keys, and the rows taken back to the plain tables
    # (posted first, because today's code writes columns added after BEFORE).
    _sql(f"SELECT setval('{session_keys}', 100)")
    api.post("/sessions", big_payload("old", operations=30, api_calls=12))
    migrate(BEFORE)
    assert _sql("SELECT relkind FROM pg_class WHERE relname = 'metrics_operation'") == [("r",)]
    session_pk = Session.objects.values_list("pk", flat=True).get()
    rows = sorted(Operation.objects.values_list("id", "client_id", "parent_id"))
    calls = sorted(ApiCall.objects.values_list("id", "client_id", "operation_id"))
    assert any(parent for _, _, parent in rows) and any(op for _, _, op in calls)

    migrate()

    assert partitions.is_partitioned()
    assert sorted(Operation.objects.values_list("id", "client_id", "parent_id")) == rows
    assert sorted(ApiCall.objects.values_list("id", "client_id", "operation_id")) == calls
    this_month = _today().strftime("%Y%m")
    assert _partition_of(Operation, rows[0][0]) == f"metrics_operation_before_{this_month}"
    # New rows continue the keys, and a new session starts this month's block.
    api.post("/sessions", big_payload("new", operations=3, api_calls=1))
    new = Session.objects.get(external_id="new")
    assert new.pk >= partitions.month_block(_today()) > session_pk
    assert min(Operation.objects.filter(session=new).values_list("id", flat=True)) > rows[-1][0]
    assert _partition_of(Operation, Operation.objects.filter(session=new).first().pk) == \
        partitions.month_partition_name("metrics_operation", _today())
    # A resend of the old session still merges on its (session, client id) key.
    assert api.post("/sessions", big_payload("old", operations=30, api_calls=12)).status_code \
        in (200, 201)
    assert Operation.objects.filter(session_id=session_pk).count() == 30


def test_partitions_are_made_ahead_and_take_the_rows_that_ran_ahead(api, session_keys):
    june = date(2027, 6, 1)
    block = partitions.month_block(june)
    _sql(f"SELECT setval('{session_keys}', %s)", [block + 4])
    api.post("/sessions", big_payload("ahead", operations=5, api_calls=2))
    ahead = Session.objects.get(external_id="ahead")
    op = Operation.objects.filter(session=ahead).first()
    assert ahead.pk == block + 5
    assert _partition_of(Operation, op.pk) == "metrics_operation_default"

    created = partitions.maintain_partitions(now=datetime(2027, 6, 2, tzinfo=UTC))

    assert "metrics_operation_y2027m06" in created and "metrics_apicall_y2027m08" in created
    assert _partition_of(Operation, op.pk) == "metrics_operation_y2027m06"
    assert _partition_of(ApiCall, ApiCall.objects.filter(session=ahead).first().pk) == \
        "metrics_apicall_y2027m06"
    assert partitions.maintain_partitions(now=datetime(2027, 6, 2, tzinfo=UTC)) == []


def test_a_new_month_starts_its_session_keys_at_its_block(session_keys):
    partitions.maintain_partitions(now=datetime(2031, 1, 1, 0, 5, tzinfo=UTC))
    (next_key,), = _sql(f"SELECT nextval('{session_keys}')")
    assert next_key == partitions.month_block(date(2031, 1, 1)) == 203101 * 10**7
    # Once past it, the month's keys are not reset by the next hourly run.
    partitions.maintain_partitions(now=datetime(2031, 1, 1, 1, 5, tzinfo=UTC))
    (after,), = _sql(f"SELECT nextval('{session_keys}')")
    assert after == next_key + 1


def _month_of_world() -> partitions.Partition:
    name = _partition_of(Operation, Operation.objects.first().pk)
    return next(p for p in partitions.partitions("metrics_operation") if p.name == name)


def test_prune_drops_a_month_whose_sessions_may_all_go(world, later):
    month = _month_of_world()
    assert not month.is_default

    result = retention.prune(now=later)

    assert (result.sessions, result.operations, result.api_calls) == (9, 63, 54)
    names = {p.name for p in partitions.partitions("metrics_operation")}
    assert month.name not in names
    assert month.name.replace("operation", "apicall") not in {
        p.name for p in partitions.partitions("metrics_apicall")}
    assert Session.objects.filter(detail_pruned_at__isnull=True).count() == 0


def test_a_pinned_session_keeps_its_month_and_the_rest_goes_row_by_row(world, later):
    Session.objects.filter(external_id="ep001_run2").update(is_pinned=True)
    month = _month_of_world()

    result = retention.prune(now=later)

    assert result.sessions == 8
    assert month.name in {p.name for p in partitions.partitions("metrics_operation")}
    assert Operation.objects.count() == 7  # the pinned run's, still in its month
    assert set(Operation.objects.values_list("session__external_id", flat=True)) == \
        {"ep001_run2"}


def test_another_projects_session_keeps_the_month_from_a_one_project_prune(
    world, later, other_api, other_project
):
    other_api.post("/sessions", big_payload("theirs", operations=4, api_calls=1))
    month = _month_of_world()

    retention.prune(now=later, older_than_days=1, project_slug="default")

    assert month.name in {p.name for p in partitions.partitions("metrics_operation")}
    assert Operation.objects.filter(session__project=other_project).count() == 4


def test_dry_run_names_the_month_and_counts_it_once(world, later):
    said = []
    result = retention.prune(now=later, dry_run=True, progress=said.append)

    assert (result.sessions, result.operations, result.api_calls) == (9, 63, 54)
    assert any(line.startswith(f"would drop {_month_of_world().name}") for line in said)
    assert Operation.objects.count() == 63
