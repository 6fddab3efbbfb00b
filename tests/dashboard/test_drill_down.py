"""From a figure to the runs behind it: card links, clickable charts, search, date range,
two sessions side by side."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from metrics.models import Session
from tests.dashboard.world import build_world, run_payload, send

pytestmark = pytest.mark.django_db


def _listed(client, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    return {s.external_id for s in response.context["sessions"]}


def test_sessions_are_found_by_id_episode_or_tag(viewer, api):
    build_world(api)
    send(api, run_payload("special", episode="ep077", started_at=datetime.now(UTC),
                          tags=["night-shift"]))

    assert _listed(viewer, "/sessions/?q=ep002_run") == {"ep002_run1", "ep002_run2",
                                                          "ep002_run3"}
    assert _listed(viewer, "/sessions/?q=ep077") == {"special"}
    assert _listed(viewer, "/sessions/?q=night-shift") == {"special"}
    assert _listed(viewer, "/sessions/?q=night") == set()  # a tag matches whole


def test_every_overview_card_links_to_the_sessions_behind_it(viewer, api):
    build_world(api)
    send(api, run_payload("broken", episode="ep009", started_at=datetime.now(UTC),
                          status="failed", failed_scene=0))

    content = viewer.get("/").content.decode()
    hrefs = dict(re.findall(r'<a class="card[^"]*drill" href="([^"]+)"><div class="label">'
                            r'([^<]+)</div>', content))
    links = {label: href.replace("&amp;", "&") for href, label in hrefs.items()}

    assert set(links) == {"Episodes", "Sessions", "Total cost", "Median duration",
                          "Cache hit rate", "API error rate", "Budget violations"}
    with_errors = set(Session.objects.filter(api_errors_count__gt=0)
                      .values_list("external_id", flat=True))
    assert _listed(viewer, links["API error rate"]) == with_errors
    violating = set(Session.objects.filter(budget_checks__passed=False)
                    .values_list("external_id", flat=True))
    assert violating and _listed(viewer, links["Budget violations"]) == violating
    assert _listed(viewer, "/sessions/?problem=failed") == {"broken"}
    assert len(_listed(viewer, links["Sessions"])) == Session.objects.count()


def test_a_custom_date_range_besides_the_presets(viewer, api):
    now = datetime.now(UTC).replace(hour=12)
    for days in (1, 3, 5):
        send(api, run_payload(f"d{days}", episode="ep001", started_at=now - timedelta(days=days)))
    since = (now - timedelta(days=4)).date().isoformat()
    until = (now - timedelta(days=2)).date().isoformat()

    response = viewer.get(f"/sessions/?from={since}&to={until}")

    assert {s.external_id for s in response.context["sessions"]} == {"d3"}
    assert f"{since} to {until}" in response.content.decode()
    assert {s.external_id for s in viewer.get(f"/sessions/?from={since}")
            .context["sessions"]} == {"d3", "d1"}


def test_chart_points_open_their_episode_or_session(viewer, api):
    build_world(api)

    overview = json.loads(viewer.get("/").context["charts"]["duration"])
    episode = json.loads(viewer.get("/episodes/ep001/").context["charts"]["runs"])

    assert overview["layout"]["meta"]["links"]["x"]["ep001"] == "/episodes/ep001/"
    assert episode["layout"]["meta"]["links"]["text"]["ep001_run2"] == "/sessions/ep001_run2/"


def test_two_sessions_side_by_side_with_costs_per_scene_and_line(viewer, api):
    sessions = build_world(api)
    a, b = sessions["ep001_run1"], sessions["ep001_run2"]

    response = viewer.get("/sessions/compare/?s=ep001_run1,ep001_run2")
    rows = {label: values for label, _, values in response.context["rows"]}

    assert [s.external_id for s in response.context["comparison"].sessions] == [
        "ep001_run1", "ep001_run2"]
    assert rows["Duration"] == [a.duration_s, b.duration_s]
    # run_payload: 3 scenes and 42 dialogue lines each
    assert rows["Cost per scene"] == pytest.approx([float(a.cost_usd) / 3,
                                                    float(b.cost_usd) / 3])
    assert rows["Time per dialogue line"] == pytest.approx([a.duration_s / 42,
                                                            b.duration_s / 42])
    assert "self_time" in response.context["charts"]
