"""Each API key has a rate limit: over it the API answers 429 with Retry-After."""

import pytest
from django.core.cache import cache
from django.test import override_settings

from metrics.models import Session
from tests.factories import session_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=3)
def test_the_request_over_the_limit_gets_429_with_retry_after(api):
    statuses = [api.get("/sessions").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = api.get("/sessions")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == {"detail": "Too many requests."}


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=2)
def test_each_key_has_its_own_budget(api, other_api):
    api.get("/sessions")
    api.get("/sessions")

    assert api.get("/sessions").status_code == 429
    assert other_api.get("/sessions").status_code == 200


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=1)
def test_a_refused_session_is_not_stored(api):
    assert api.post("/sessions", session_payload("first")).status_code == 201
    assert api.post("/sessions", session_payload("second")).status_code == 429
    assert list(Session.objects.values_list("external_id", flat=True)) == ["first"]


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=0)
def test_zero_turns_the_limit_off(api):
    assert {api.get("/sessions").status_code for _ in range(30)} == {200}


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=1, CACHES={"default": {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0"}})  # nothing listens there
def test_an_unreachable_cache_lets_requests_through(api):
    statuses = {api.get("/sessions").status_code for _ in range(3)}
    assert statuses == {200}
