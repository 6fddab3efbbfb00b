"""Property-based fuzzing of /api/v1/ from its own OpenAPI schema: no 5xx, answers as documented.

Each route gets a bounded number of generated requests (valid and invalid ones), sent
in-process through the WSGI application with a valid key.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest.models import ApiKey
from metrics.models import DEFAULT_PROJECT_SLUG, Project

EXAMPLES_PER_ROUTE = 30
# Not positive_data_acceptance: a paging cursor or a session id the API never issued is
# schema-valid yet rightly refused (400/404), which that check counts as a failure.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def load_schema():
    from perfmon_site.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


OPERATIONS = {op.label: op for op in (r.ok() for r in load_schema().get_all_operations())}


@pytest.fixture
def keep_test_connection():
    """Calls go straight to the WSGI application, whose request signals would close the
    database connection that holds the test's transaction; Django's own test client
    detaches the same handler for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, keep_test_connection) -> dict[str, str]:
    project, _ = Project.objects.get_or_create(slug=DEFAULT_PROJECT_SLUG,
                                               defaults={"name": "Default"})
    return {"Authorization": f"Bearer {ApiKey.generate(project=project, name='fuzz')[1]}"}


@pytest.mark.django_db
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_route_answers_as_documented(label, bearer):
    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate(headers=bearer, checks=CHECKS)

    check()
