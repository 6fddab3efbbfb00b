"""The schemathesis fuzz again, on PostgreSQL only and with more examples per route.

PostgreSQL refuses what SQLite stores (NUL in text, integers past 2**31 - 1), so this is
where generated input finds 5xx; strings include NUL and astral characters (schemathesis
generates every UTF-8 code point and NUL by default).
"""

import pytest
from hypothesis import HealthCheck, given, settings

from tests.ingest.test_api_fuzz import CHECKS, OPERATIONS, bearer, keep_test_connection  # noqa: F401

EXAMPLES_PER_ROUTE = 100

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_route_answers_as_documented_on_postgres(label, bearer):  # noqa: F811
    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate(headers=bearer, checks=CHECKS)

    check()
