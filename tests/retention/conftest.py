"""Retention's world: the dashboard's analysed runs, and a clock far enough ahead that
they are all past the retention period."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.dashboard.conftest import viewer, world  # noqa: F401 (the dashboard's world)
from tests.retention.migrating import migrate

# Every run of the world started within the last week: 100 days on, all are 90+ days old.
LATER = datetime.now(UTC) + timedelta(days=100)


@pytest.fixture
def later() -> datetime:
    return LATER


@pytest.fixture
def back_to_latest():
    """For a test that migrates the database back: the tests after it run on the latest
    schema."""
    yield
    migrate()
