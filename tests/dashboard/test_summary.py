"""The session page and summary.txt show the SDK's summary, priced by the server."""

from datetime import UTC, datetime

import pytest

from metrics.dashboard.summary import session_summary
from tests.dashboard.world import run_payload, send, user_with


@pytest.mark.django_db
def test_the_session_page_shows_the_summary_with_server_prices(client, api):
    stored = send(api, run_payload("s1", episode="ep001", started_at=datetime.now(UTC)))
    client.force_login(user_with("view_session"))

    summary = session_summary(stored)
    page = client.get("/sessions/s1/").content.decode()
    text = client.get("/sessions/s1/summary.txt")

    assert summary.startswith("Performance Summary (Session: s1)")
    assert f"Est. Cost: ${stored.cost_usd:.4f}" in summary
    assert "not priced here" not in summary
    assert "scene_generation: " in summary
    assert summary.splitlines()[0] in page
    assert text["Content-Type"].startswith("text/plain")
    assert text.content.decode() == summary
