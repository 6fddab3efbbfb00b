"""User-supplied text is text: escaped in the HTML and inside every figure's JSON."""

import json
import re
from datetime import UTC, datetime

import pytest

from metrics.models import Annotation, Session
from tests.dashboard.world import run_payload, send, user_with

pytestmark = pytest.mark.django_db

EVIL = "<script>alert(1)</script>"
PAGES = ["/", "/episodes/", "/episodes/compare/?episodes=ep001,ep002", "/episodes/ep001/",
         "/sessions/evil1/", "/operations/?name=" + EVIL, "/costs/",
         "/?tag=" + EVIL, "/costs/?whatif_model=openai/gpt-4o&whatif_episodes=ep001"]


@pytest.fixture
def evil_world(api):
    names = {"root": EVIL, "scene": "scene</script><b>x", "dialogue": "a&b"}
    for n, code in enumerate(("ep001", "ep002")):
        send(api, run_payload(f"evil{n + 1}", episode=code, started_at=datetime.now(UTC),
                              names=names, tags=[EVIL], release=EVIL, environment="<i>",
                              failed_scene=0))
    session = Session.objects.get(external_id="evil1")
    Annotation.objects.create(session=session, text=EVIL)
    session.operations.filter(client_id="s0").update(error=EVIL, metadata={"note": EVIL})


@pytest.mark.parametrize("page", PAGES)
def test_no_page_lets_user_text_out_as_markup(client, evil_world, page):
    client.force_login(user_with("view_session", "add_annotation"))

    content = client.get(page).content.decode()

    assert EVIL not in content
    assert "</script><b>" not in content
    for blob in re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>',
                           content, re.S):
        assert "<" not in blob and ">" not in blob
        json.loads(blob)  # still valid JSON once the escapes are read


def test_the_figure_labels_show_the_names_as_escaped_text(client, evil_world):
    client.force_login(user_with("view_session"))

    content = client.get("/sessions/evil1/").content.decode()

    blob = re.search(r'id="fig-waterfall">(.*?)</script>', content, re.S).group(1)
    fig = json.loads(blob)
    assert fig["layout"]["yaxis"]["ticktext"][0] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content  # the HTML, escaped once
