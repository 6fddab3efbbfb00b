import gzip
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from ingest.models import ApiKey
from metrics.models import DEFAULT_PROJECT_SLUG, Project
from perfmon_site.celery import app as celery_app
from tests.private_services import cluster, database  # noqa: F401 (fixtures for all tests)


class ApiClient:
    """Django's test client speaking to /api/v1/ with one project's key."""

    def __init__(self, raw_key: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}

    def post(self, path: str, payload: Any, *, gzipped: bool = False, **headers: str):
        body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.client.post(
            f"/api/v1{path}", body, content_type="application/json",
            headers={**self.headers, **headers},
        )

    def get(self, path: str, **params: Any):
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Start every test with an empty cache.

    The rate limiter counts per API key id and minute; on SQLite a rolled-back test's key
    id is handed out again, so without this a fast run piles every test's requests into
    one key's window and meets the limit halfway through the suite.
    """
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def celery_eager_unless_a_worker_runs(request):
    """Run tasks in-process, as on the embedded default, except in real-worker tests.

    With a broker configured (the CI's PostgreSQL pass), tasks would otherwise be queued
    to Redis with no worker to run them.
    """
    if "celery_worker" in request.keywords:
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def project(db) -> Project:
    # get_or_create: transactional tests flush the row the data migration made.
    project, _ = Project.objects.get_or_create(
        slug=DEFAULT_PROJECT_SLUG, defaults={"name": "Default"}
    )
    return project


@pytest.fixture
def other_project(db) -> Project:
    return Project.objects.create(name="Other show", slug="other-show")


@pytest.fixture
def api_key(project) -> tuple[ApiKey, str]:
    return ApiKey.generate(project=project, name="generator")


@pytest.fixture
def api(api_key) -> ApiClient:
    return ApiClient(api_key[1])


@pytest.fixture
def other_api(other_project) -> ApiClient:
    return ApiClient(ApiKey.generate(project=other_project, name="other generator")[1])


@pytest.fixture
def anonymous_api(db) -> ApiClient:
    return ApiClient(None)


def pytest_collection_modifyitems(config, items):
    """Tests that need a real service run in the CI pass that provides it (see .ci/run)."""
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_broker = not settings.CELERY_TASK_ALWAYS_EAGER
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://..."))
        if "celery_worker" in item.keywords and not (has_broker and on_postgres):
            item.add_marker(pytest.mark.skip(
                reason="needs CELERY_BROKER_URL=redis://... and a PostgreSQL DATABASE_URL"))
