"""Hardening headers on every page, and pages a strict Content-Security-Policy can allow:
no inline scripts, no inline event handlers."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from metrics.models import Project
from tests.dashboard.world import user_with
from tests.factories import script_payload

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [ROOT / "templates", ROOT / "metrics" / "templates", ROOT / "ingest" / "templates"]
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I | re.S)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
PAGES = ["/", "/episodes/", "/episodes/ep001/", "/sessions/hdr/", "/operations/", "/costs/",
         "/episodes/compare/?episodes=ep001&episodes=ep002"]


def inline_scripts(html: str) -> list[str]:
    """<script> tags that would run inline: no src, and not a JSON data block."""
    return [attrs for attrs in SCRIPT_TAG.findall(html)
            if "src=" not in attrs and 'type="application/json"' not in attrs]


def directives(header: str) -> dict[str, list[str]]:
    parts = (d.split() for d in header.split(";") if d.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def producer(client, api, project):
    api.post("/sessions", script_payload("hdr"))
    api.post("/sessions", script_payload("hdr2", episode="ep002"))
    second = Project.objects.create(name="Second show", slug="second")  # shows the switcher
    client.force_login(user_with("view_session", projects=[project, second]))
    return client


def test_dashboard_pages_carry_a_strict_policy_and_the_hardening_headers(producer):
    for url in PAGES:
        response = producer.get(url)
        assert response.status_code == 200, url
        policy = directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_the_login_page_and_the_plotly_bundle_carry_them_too(client):
    for url in ("/accounts/login/", "/assets/plotly.min.js"):
        response = client.get(url)
        assert response.status_code == 200
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert response["X-Content-Type-Options"] == "nosniff"


def test_rendered_pages_have_no_inline_scripts_or_handlers(producer):
    for url in PAGES:
        html = producer.get(url).content.decode()
        assert not INLINE_HANDLER.search(html), url
        assert inline_scripts(html) == [], url
    assert 'data-autosubmit' in producer.get("/").content.decode()  # the project switcher


def test_no_template_has_inline_scripts_or_handlers():
    templates = [path for folder in TEMPLATE_DIRS if folder.exists()
                 for path in folder.rglob("*.html")]
    assert len(templates) > 10  # the dashboard's and the admin overrides
    for path in templates:
        text = path.read_text()
        assert not INLINE_HANDLER.search(text), path
        assert inline_scripts(text) == [], path


def test_the_project_switcher_submits_from_a_static_file(producer):
    found = finders.find("metrics/autosubmit.js")
    script = Path(found).read_text()

    assert "select[data-autosubmit]" in script and ".submit()" in script
    assert "metrics/autosubmit.js" in producer.get("/").content.decode()
