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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings

from metrics.models import ModelPrice
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


@pytest.fixture(autouse=True)
def shipped_prices_and_budgets(project):
    """The prices and budgets the data migrations ship, which a transactional test's flush
    removed, or every call would read as unpriced. (serialized_rollback would restore them,
    but on PostgreSQL it collides with the content types that an earlier transactional
    test's flush re-created.)"""
    for module, seed in (("0004_model_prices_and_default_budgets", "seed"),
                         ("0008_token_ledger", "seed_one_hour_prices")):
        getattr(import_module(f"metrics.migrations.{module}"), seed)(django_apps, None)


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
    # A session still arriving in parts, and a price correction that reprices the demo's
    # gpt-4o-mini calls (transactional test: it reprices at once), for their pages.
    parts = run_payload("ep008_parts", episode="ep008", started_at=datetime.now(UTC), scenes=2)
    parts["session"].update(sequence=1, part={"index": 1, "count": 3})
    send(api, parts)
    ModelPrice.objects.create(
        provider="openai", model="gpt-4o-mini", input_per_mtok=Decimal("0.20"),
        output_per_mtok=Decimal("0.80"), cached_input_per_mtok=Decimal("0.10"),
        valid_from=datetime.now(UTC) - timedelta(days=1), source="test: a corrected price")
    user_with("view_session", "add_annotation", name="producer", password="demo-password-1")
    return payloads


WIDTHS = {"desktop": 1440, "phone": 390}
PAGES = (  # path, screenshot name
    ("/", "overview"),
    ("/episodes/", "episodes"),
    ("/episodes/compare/?episodes=ep001,ep003", "compare"),
    ("/episodes/ep002/", "episode"),
    ("/sessions/ep002_run3/", "session"),  # the demo's failed run
    ("/sessions/ep007_live/", "session-running"),
    ("/sessions/ep001_run1/", "session-repriced"),  # its price history
    ("/sessions/ep008_parts/", "session-parts"),  # two of three parts still missing
    ("/sessions/?q=ep00", "sessions"),
    ("/sessions/compare/?s=ep001_run1,ep001_run2", "compare-sessions"),
    ("/operations/", "operations"),
    ("/costs/?whatif_model=openai/gpt-4o-mini", "costs"),
)


class Page:
    """One browser tab that records console errors and failed requests."""

    def __init__(self, page, base_url: str) -> None:
        self.page, self.base_url, self.errors = page, base_url, []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))

    def open(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.base_url + path, wait_until="networkidle")
        assert response is not None and response.status == status, path

    def charts_drawn(self) -> dict[str, int]:
        """Traces drawn in each figure on the page, by the figure's element id."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('[data-figure]')]"
            ".every(el => el.classList.contains('js-plotly-plot'))", timeout=20_000)
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map("
            "el => [el.dataset.figure, el.querySelectorAll('.trace').length]))")

    def page_overflow_px(self) -> int:
        """How far the page scrolls sideways: 0 when everything fits the screen."""
        return self.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")

    def table_overflow_px(self) -> int:
        """How far the widest table scrolls sideways in its box: 0 when every column shows."""
        return self.page.evaluate(
            "() => Math.max(0, ...[...document.querySelectorAll('.table-wrap, .table-scroll')]"
            ".map(box => box.scrollWidth - box.clientWidth))")

    def plot_width(self, figure: str) -> float:
        """Width of a figure's plotting area (where the bars are), in CSS px."""
        return self.page.evaluate(
            "id => document.querySelector(`[data-figure=${id}]`)._fullLayout._size.w", figure)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _log_in(tab: Page) -> None:
    tab.open("/")
    assert "/accounts/login/" in tab.page.url
    tab.page.fill("#id_username", "producer")
    tab.page.fill("#id_password", "demo-password-1")
    tab.page.click("button[type=submit]")
    tab.page.wait_for_load_state("networkidle")


def _browser(playwright, profile: str, width: int):
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": width, "height": 900},
    )


def test_the_dashboard_draws_its_figures_in_a_real_browser(demo_world, live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = _browser(playwright, profile, WIDTHS["desktop"])
        try:
            tab = Page(browser.new_page(), live_server.url)
            tab.open("/")
            tab.shot("login")
            _log_in(tab)

            drawn = tab.charts_drawn()
            assert set(drawn) == {"fig-duration", "fig-cost", "fig-cache", "fig-tokens"}
            assert all(traces > 0 for traces in drawn.values()), drawn
            assert tab.page.locator("text=ep007_live").count() >= 1  # running session
            # Drill-down: a click on a point of a trend opens that episode.
            point = tab.page.locator("[data-figure=fig-duration] .scatterlayer .point").first
            box = point.bounding_box()
            tab.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            tab.page.wait_for_url("**/episodes/ep*/", timeout=10_000)

            tab.open("/episodes/")
            tab.page.check("input[value=ep001]")
            tab.page.check("input[value=ep003]")
            tab.page.click("button[data-compare]")
            tab.page.wait_for_load_state("networkidle")
            assert "episodes=ep001" in tab.page.url and "episodes=ep003" in tab.page.url
            drawn = tab.charts_drawn()
            assert len(drawn) == 4 and all(traces > 0 for traces in drawn.values()), drawn

            tab.open("/sessions/ep002_run3/")  # the demo's failed run
            drawn = tab.charts_drawn()
            assert drawn["fig-waterfall"] >= 2  # succeeded and failed operations
            bars = tab.page.locator(".js-plotly-plot .trace .point").count()
            assert bars == len(demo_world["ep002_run3"]["operations"])  # one bar each
            assert tab.errors == []
        finally:
            browser.close()


@pytest.mark.parametrize("device", list(WIDTHS))
def test_every_page_fits_the_screen_without_sideways_scrolling(demo_world, live_server,
                                                                device):
    """At 390 px (a phone) and 1440 px: no page scrolls sideways, every figure is drawn,
    and the session timeline keeps most of a phone's width for its bars. On a desktop
    every column of every table shows without scrolling its box (a phone scrolls wide
    tables in their box). Takes the README's screenshots at both widths."""
    sync_api = pytest.importorskip("playwright.sync_api")
    width = WIDTHS[device]
    suffix = "" if device == "desktop" else "-phone"
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = _browser(playwright, profile, width)
        try:
            tab = Page(browser.new_page(), live_server.url)
            _log_in(tab)
            overflow, tables_overflow = {}, {}
            for path, name in PAGES:
                tab.open(path)
                drawn = tab.charts_drawn()
                assert all(traces > 0 for traces in drawn.values()), (path, drawn)
                overflow[path] = tab.page_overflow_px()
                tables_overflow[path] = tab.table_overflow_px()
                if name == "session":
                    assert tab.plot_width("fig-waterfall") >= 0.5 * width
                tab.shot(name + suffix)
            assert {path: px for path, px in overflow.items() if px > 0} == {}
            if device == "desktop":
                assert {path: px for path, px in tables_overflow.items() if px > 0} == {}
            assert tab.errors == []
        finally:
            browser.close()


def _log_in_as(tab: Page, username: str, password: str) -> None:
    tab.open("/accounts/login/")
    tab.page.fill("#id_username", username)
    tab.page.fill("#id_password", password)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("device", list(WIDTHS))
def test_the_pages_around_the_dashboard_fit_the_screen_too(db, live_server, device):
    """The login page, the locked-out page after too many wrong passwords, the page a
    person without a role gets (403), and the settings page."""
    sync_api = pytest.importorskip("playwright.sync_api")
    user_with(name="outsider", password="outsider-password-1")  # no role
    user_with("view_session", name="producer", password="demo-password-1")
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = _browser(playwright, profile, WIDTHS[device])
        try:
            tab = Page(browser.new_page(), live_server.url)
            overflow = {}
            tab.open("/accounts/login/")
            overflow["login"] = tab.page_overflow_px()
            for _ in range(settings.AXES_FAILURE_LIMIT):
                _log_in_as(tab, "intruder", "wrong-password")
            assert "Too many failed log-ins" in tab.page.content()
            overflow["locked out"] = tab.page_overflow_px()
            _log_in_as(tab, "outsider", "outsider-password-1")
            tab.open("/", status=403)
            overflow["403"] = tab.page_overflow_px()
            tab.page.context.clear_cookies()
            _log_in_as(tab, "producer", "demo-password-1")
            tab.open("/settings/")
            overflow["settings"] = tab.page_overflow_px()

            assert {page: px for page, px in overflow.items() if px > 0} == {}
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


@pytest.mark.parametrize("device", list(WIDTHS))
def test_a_middle_page_of_the_episodes_table_fits_and_links_both_ways(
        demo_world, live_server, device, monkeypatch):
    """A season's table runs over many pages: page 2 of 3 (three episodes a page here)
    fits the screen, and its links lead to the pages beside it, sort kept."""
    from metrics.dashboard import views

    monkeypatch.setattr(views, "EPISODES_PER_PAGE", 3)
    sync_api = pytest.importorskip("playwright.sync_api")
    suffix = "" if device == "desktop" else "-phone"
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = _browser(playwright, profile, WIDTHS[device])
        try:
            tab = Page(browser.new_page(), live_server.url)
            _log_in(tab)
            tab.open("/episodes/?sort=code&page=2")
            assert tab.page.locator("text=Page 2 of 3").count() == 1
            assert tab.page_overflow_px() == 0
            tab.shot("episodes-paged" + suffix)
            codes = tab.page.locator("td a[href^='/episodes/ep']").all_inner_texts()
            assert codes == ["ep004", "ep005", "ep006"]
            tab.page.click("text=Next →")
            tab.page.wait_for_load_state("networkidle")
            assert "sort=code" in tab.page.url and "page=3" in tab.page.url
            assert tab.page.locator("text=Page 3 of 3").count() == 1
            assert tab.errors == []
        finally:
            browser.close()
