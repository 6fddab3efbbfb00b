"""A real headless Chromium against a live server: log in, open the overview, a comparison
and a session page, and see the Plotly figures drawn with data and no console errors.

The data is the demo simulator's (``perfmon.demo``: a fake-model script generator recorded
with the SDK), sent through the ingest API and analyzed. Uses Debian's chromium
(``.ci/run`` installs it) through Playwright's Python driver, never a browser Playwright
downloads. Screenshots go to docs/screenshots/ (the README shows them).
"""

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perfmon.demo import run_demo
from tests.dashboard.world import run_payload, send, user_with
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse: the demo uses the SDK)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
    pytest.mark.django_db(transaction=True),
]


DEMO_EPISODES = 6
DEMO_SPEED = 40.0  # simulated seconds per real second: a few seconds for the whole demo


@pytest.fixture
def demo_world(api):
    """The demo's runs (re-runs, a cheaper model, a regression, a failed run) and one
    session still running."""
    results = asyncio.run(run_demo(episodes=DEMO_EPISODES, speed=DEMO_SPEED))
    payloads = {result.run.session_id: result.payload for result in results}
    for payload in payloads.values():
        send(api, payload)
    send(api, run_payload("ep007_live", episode="ep007", started_at=datetime.now(UTC),
                          status="running", scenes=2))
    user_with("view_session", "add_annotation", name="producer", password="demo-password-1")
    return payloads


class Page:
    """One browser tab that records console errors and failed requests."""

    def __init__(self, page, base_url: str) -> None:
        self.page, self.base_url, self.errors = page, base_url, []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))

    def open(self, path: str) -> None:
        response = self.page.goto(self.base_url + path, wait_until="networkidle")
        assert response is not None and response.status == 200, path

    def charts_drawn(self) -> dict[str, int]:
        """Traces drawn in each figure on the page, by the figure's element id."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('[data-figure]')]"
            ".every(el => el.classList.contains('js-plotly-plot'))", timeout=20_000)
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map("
            "el => [el.dataset.figure, el.querySelectorAll('.trace').length]))")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_dashboard_draws_its_figures_in_a_real_browser(demo_world, live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1360, "height": 900},
        )
        try:
            tab = Page(browser.new_page(), live_server.url)

            tab.open("/")
            assert "/accounts/login/" in tab.page.url
            tab.shot("login")
            tab.page.fill("#id_username", "producer")
            tab.page.fill("#id_password", "demo-password-1")
            tab.page.click("button[type=submit]")
            tab.page.wait_for_load_state("networkidle")

            drawn = tab.charts_drawn()
            assert set(drawn) == {"fig-duration", "fig-cost", "fig-cache", "fig-tokens"}
            assert all(traces > 0 for traces in drawn.values()), drawn
            assert tab.page.locator("text=ep007_live").count() >= 1  # running session
            tab.shot("overview")

            tab.open("/episodes/")
            tab.page.check("input[value=ep001]")
            tab.page.check("input[value=ep003]")
            tab.page.click("button[data-compare]")
            tab.page.wait_for_load_state("networkidle")
            assert "episodes=ep001" in tab.page.url and "episodes=ep003" in tab.page.url
            drawn = tab.charts_drawn()
            assert len(drawn) == 4 and all(traces > 0 for traces in drawn.values()), drawn
            tab.shot("compare")

            tab.open("/sessions/ep002_run3/")  # the demo's failed run
            drawn = tab.charts_drawn()
            assert drawn["fig-waterfall"] >= 2  # succeeded and failed operations
            bars = tab.page.locator(".js-plotly-plot .trace .point").count()
            assert bars == len(demo_world["ep002_run3"]["operations"])  # one bar each
            tab.shot("session")

            for path, name in (("/episodes/", "episodes"), ("/operations/", "operations"),
                               ("/costs/?whatif_model=openai/gpt-4o-mini", "costs"),
                               ("/episodes/ep002/", "episode")):
                tab.open(path)
                tab.charts_drawn()
                tab.shot(name)

            assert tab.errors == []
        finally:
            browser.close()


def test_script_in_names_stays_text_in_the_browser(api, live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    evil = "<script>window.pwned=1</script>"
    send(api, run_payload("evil", episode="ep666", started_at=datetime.now(UTC),
                          names={"scene": evil}, tags=[evil]))
    user_with("view_session", name="producer", password="demo-password-1")
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        )
        try:
            tab = Page(browser.new_page(), live_server.url)
            tab.open("/accounts/login/?next=/sessions/evil/")
            tab.page.fill("#id_username", "producer")
            tab.page.fill("#id_password", "demo-password-1")
            tab.page.click("button[type=submit]")
            tab.page.wait_for_load_state("networkidle")
            tab.charts_drawn()

            assert tab.page.evaluate("() => window.pwned") is None
            assert evil in tab.page.inner_text("main")
            tick_labels = tab.page.locator(".js-plotly-plot .ytick text").all_text_contents()
            assert any(evil in label for label in tick_labels), tick_labels
            assert tab.errors == []
        finally:
            browser.close()
