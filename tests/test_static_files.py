"""In production (DEBUG off) the web process itself serves the collected static files."""

from django.core.management import call_command
from django.test import Client, override_settings


def test_collected_dashboard_assets_are_served_with_debug_off(tmp_path, settings):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)

    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path):
        response = Client().get("/static/metrics/dashboard.css")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)
