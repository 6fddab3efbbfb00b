"""A NUL in a page's URL is a 400, never a database error (PostgreSQL text cannot hold it)."""

import pytest

from tests.dashboard.world import user_with
from tests.factories import script_payload

pytestmark = pytest.mark.django_db

HOSTILE_URLS = [
    "/sessions/a%00b/", "/sessions/a%00b/summary.txt", "/episodes/a%00b/",
    "/?workflow=a%00b", "/?project=a%00b", "/episodes/?q=a%00b", "/operations/?name=a%00b",
    "/episodes/compare/?episodes=a%00b&episodes=ep001", "/costs/?a%00b=1",
    "/admin/metrics/session/?q=a%00b",
]


@pytest.fixture
def producer(client, api):
    api.post("/sessions", script_payload("guarded"))
    client.force_login(user_with("view_session"))
    return client


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_nul_in_a_page_url_is_400(producer, url):
    assert producer.get(url).status_code == 400


def test_pages_without_one_are_untouched(producer):
    assert producer.get("/sessions/guarded/").status_code == 200
    assert producer.get("/?workflow=script_generation").status_code == 200


def test_the_api_answers_for_itself(api):
    assert api.get("/sessions", episode="a\x00b").status_code == 422
    assert api.get("/sessions/a%00b").status_code == 404
