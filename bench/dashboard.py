"""Dashboard page times on PostgreSQL at two scales: 100,000 and 1,000,000 operations.

Builds two scratch databases through the ingest service (``ingest.services.store_payload``,
then ``metrics.analysis.analyze_session``): 1,000 sessions of 100 operations in 100 episodes,
and 10,000 sessions in 1,000 episodes. Sessions lie in the last 30 days at both scales, so
the default period of every page holds ten times more at the larger one.

Each page is requested with Django's test client as a logged-in producer, with DEBUG off.
The two scales are timed in alternation, page by page (switch database, one warm-up
request, one timed request, and the same on the other scale), so that whatever else the
machine is doing weighs on both alike. Prints one JSON object on its last line: per page
the median (ms) at both scales and the growth ratio, and whether the targets (under 300 ms
at the larger scale, growth under 2x) are met. Needs PostgreSQL on loopback (BENCH_PG).

``python bench/dashboard.py big-session`` times instead the page of one session of 10,001
operations (100 scenes of 99 repeated siblings) and the details of one group, against the
1 s the page must answer in, and the time until the page is drawn in headless Chromium
(Debian's chromium, through playwright) against the 2 s it must be interactive in; prints
one JSON object with both ratios.
"""

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from servers import recreate_database

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAMES = {"small": "perfmon_bench_dashboard_small", "large": "perfmon_bench_dashboard_large"}
SMALL_SESSIONS = int(os.environ.get("BENCH_SMALL_SESSIONS", "1000"))
RUNS_PER_EPISODE = 10
SCALE = 10
REPEATS = int(os.environ.get("BENCH_REPEATS", "15"))
WARMUP = 1  # per timed request, after switching database
PERIOD = timedelta(days=30)
TARGET_MS, TARGET_GROWTH = 300.0, 2.0
MODELS = (("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"),
          ("house", "in-house-llm"))  # the last one has no price: unpriced calls
RELEASES = ("generator 1.4.0", "generator 1.4.1", "generator 1.5.0", "generator 1.6.0")
NOW = datetime.now(UTC).replace(microsecond=0)


def recreate_databases() -> dict[str, str]:
    return {scale: recreate_database(PG, name) for scale, name in DB_NAMES.items()}


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)
    # Production-like: DEBUG off (no query log, cached templates), plain HTTP test client.
    os.environ.update(DEBUG="0", SECRET_KEY="bench-only-" + "x" * 40,
                      ALLOWED_HOSTS="testserver,127.0.0.1",
                      SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0",
                      LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    # Import every module a request will need now: the build takes half an hour, and a
    # module first imported after it would come from whatever the work tree holds then.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view


def use_database(scale: str) -> None:
    """Point Django's default connection at one scale's database (reconnects lazily)."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = DB_NAMES[scale]


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def session_payload(session_id: str, episode: str, started: datetime, n: int,
                    status: str = "completed") -> dict:
    """100 operations: a root and 9 scenes of scene, 6 dialogue lines, 2 jokes, 2 lookups."""

    def at(seconds: float) -> str:
        return (started + timedelta(seconds=seconds)).isoformat()

    slow = 1.0 + (n % 7) * 0.1  # runs differ, so percentiles and box plots have a spread
    scene_s = 10.0 * slow
    total = 9 * (scene_s + 0.5) + 1.0
    running = status == "running"
    ops = [{"id": "root", "name": "generate_full_script", "started_at": at(0),
            "ended_at": None if running else at(total), "duration_s": None if running else total,
            "success": None if running else True, "metadata": {"scenes": 9}}]
    calls = []
    for s in range(9):
        start = 1.0 + s * (scene_s + 0.5)
        sid = f"s{s}"
        ops.append({"id": sid, "parent_id": "root", "name": "scene_generation",
                    "started_at": at(start), "ended_at": at(start + scene_s),
                    "duration_s": scene_s, "success": (n + s) % 41 != 0,
                    "metadata": {"scene": s + 1}, "cache_hits": 2, "cache_misses": 1})
        children = [("dialogue_writing", 0.9 * slow)] * 6 + [("joke_analysis", 0.5 * slow)] * 2 \
            + [("embedding_lookup", 0.1)] * 2
        offset = start + 0.2
        for c, (name, seconds) in enumerate(children):
            ops.append({"id": f"{sid}-{c}", "parent_id": sid, "name": name,
                        "started_at": at(offset), "ended_at": at(offset + seconds),
                        "duration_s": seconds, "success": True, "metadata": {"i": c}})
            offset += seconds
        for c in range(2):
            provider, model = MODELS[(n + s + c) % (len(MODELS) if s == 8 else 3)]
            calls.append({
                "id": f"{sid}-c{c}", "operation_id": f"{sid}-{c}", "provider": provider,
                "model": model, "at": at(start + 0.3 + c), "latency_s": 0.8,
                "prompt_tokens": 900, "completion_tokens": 160, "cached_tokens": 200 * c,
                "total_tokens": 1060, "cost_usd": None, "error": (n + s + c) % 53 == 0,
            })
    return {
        "schema_version": 1,
        "session": {
            "id": session_id, "episode": episode,
            "workflow": "script_generation" if n % 5 else "rewrite_pass",
            "release": RELEASES[min(len(RELEASES) - 1, int((NOW - started) < PERIOD / 2) * 2
                                    + n % 2)],
            "environment": "production" if n % 10 else "staging", "host": f"render-0{n % 3}",
            "status": status, "started_at": started.isoformat(),
            "ended_at": None if running else at(total),
            "cache": {"hits": 20 + n % 10, "misses": 10,
                      "by_name": {"llm": {"hits": 14, "misses": 6}}},
            "counters": {"scenes_generated": 9, "dialogue_lines_generated": 54},
            "tags": ["pilot"] if n % 3 == 0 else ["season2"],
            "metadata": {"bench": True},
        },
        "operations": ops,
        "api_calls": calls,
    }


def build(first_episode: int, episodes: int, *, label: str) -> None:
    """``episodes`` episodes of RUNS_PER_EPISODE runs, spread over the last 30 days."""
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.analyze import analyze_session
    from metrics.models import Project

    project = Project.objects.get(slug="default")
    total = episodes * RUNS_PER_EPISODE
    began = time.perf_counter()
    n = 0
    for e in range(first_episode, first_episode + episodes):
        # episodes in time order across the period, each run a little after the last
        base = NOW - PERIOD + PERIOD * ((e - first_episode) + 0.5) / episodes
        for r in range(RUNS_PER_EPISODE):
            started = base + timedelta(minutes=7 * r) - timedelta(hours=2)
            payload = session_payload(f"ep{e:04}_run{r}", f"ep{e:04}", started, e * 13 + r)
            session = store_payload(project, SessionPayload.model_validate(payload)).session
            analyze_session(session)
            n += 1
            if n % 500 == 0:
                rate = n / (time.perf_counter() - began)
                print(f"  {label}: {n}/{total} sessions ({rate:.0f}/s)", flush=True)


def add_running(tag: str) -> None:
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.models import Project

    project = Project.objects.get(slug="default")
    for i in range(3):
        payload = session_payload(f"live_{tag}_{i}", "ep0000", NOW - timedelta(minutes=i),
                                  i, status="running")
        payload["operations"] = payload["operations"][:40]
        payload["api_calls"] = payload["api_calls"][:6]
        store_payload(project, SessionPayload.model_validate(payload))


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def pages() -> dict[str, str]:
    from metrics.models import Episode, Session

    latest = list(Episode.objects.order_by("-code").values_list("code", flat=True)[:4])
    session = Session.objects.filter(status="completed").order_by("-started_at").first()
    return {
        "overview": "/",
        "overview_filtered": "/?environment=production&tag=pilot",
        "episodes": "/episodes/",
        "episodes_by_cost": "/episodes/?sort=-cost_per_run",
        "compare": "/episodes/compare/?episodes=" + ",".join(reversed(latest)),
        "episode": f"/episodes/{latest[0]}/",
        "session": f"/sessions/{session.external_id}/",
        "operations": "/operations/?name=scene_generation",
        "costs": "/costs/?whatif_model=openai/gpt-4o-mini",
        "costs_filtered": "/costs/?release=generator+1.6.0&by=workflow",
    }


def time_interleaved(clients: dict, urls: dict[str, dict[str, str]]) -> dict[str, dict]:
    """Median ms per page and scale, the scales timed in alternation."""
    times: dict[str, dict[str, list[float]]] = {scale: {} for scale in clients}
    for page in urls["small"]:
        for _ in range(REPEATS):
            for scale, client in clients.items():
                use_database(scale)
                url = urls[scale][page]
                for _ in range(WARMUP):
                    client.get(url)
                began = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - began
                assert response.status_code == 200, (url, response.status_code)
                times[scale].setdefault(page, []).append(elapsed * 1000)
        print(f"  {page:<18} small {statistics.median(times['small'][page]):7.1f} ms   "
              f"large {statistics.median(times['large'][page]):7.1f} ms", flush=True)
    return {scale: {page: round(statistics.median(values), 1) for page, values in by.items()}
            for scale, by in times.items()}


def logged_in_client():
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    from metrics.models import Project

    user, _ = User.objects.get_or_create(username="bench-producer")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="metrics", codename__in=["view_session", "add_annotation"]))
    user.projects.add(*Project.objects.all())  # a producer sees the projects they belong to
    client = Client()
    client.force_login(user)
    return client


def counts() -> dict[str, int]:
    from metrics.models import Episode, Operation, Session

    return {"sessions": Session.objects.count(), "episodes": Episode.objects.count(),
            "operations": Operation.objects.count()}


def main() -> None:
    # BENCH_REUSE=1 times the databases a previous run built (migrated to the current
    # schema) instead of building them again: for re-timing after a change to the pages.
    reuse = os.environ.get("BENCH_REUSE") == "1"
    databases = {s: f"{PG}/{n}" for s, n in DB_NAMES.items()} if reuse else recreate_databases()
    setup_django(databases["small"])
    small_episodes = SMALL_SESSIONS // RUNS_PER_EPISODE
    scales = {"small": small_episodes, "large": small_episodes * SCALE}
    clients, urls, sizes = {}, {}, {}
    for scale, episodes in scales.items():
        use_database(scale)
        migrate()
        if not reuse:
            print(f"building the {scale} scale: {episodes * RUNS_PER_EPISODE} sessions",
                  flush=True)
            build(0, episodes, label=scale)
            add_running(scale)
            vacuum()
        sizes[scale] = counts()
        print(f"{scale}: {sizes[scale]}", flush=True)
        clients[scale] = logged_in_client()
        urls[scale] = pages()

    print("timing every page, the two scales in alternation", flush=True)
    medians = time_interleaved(clients, urls)
    small, large = medians["small"], medians["large"]
    growth = {name: round(large[name] / small[name], 2) for name in small}
    summary = {
        "scales": sizes,
        "median_ms_small": small,
        "median_ms_large": large,
        "growth": growth,
        "targets": {"max_ms_large": TARGET_MS, "max_growth": TARGET_GROWTH},
        "targets_met": all(v < TARGET_MS for v in large.values())
        and all(g < TARGET_GROWTH for g in growth.values()),
    }
    print(json.dumps(summary))


# --- one big session: ``python bench/dashboard.py big-session`` ------------------------

BIG_DB = "perfmon_bench_big_session"
BIG_SCENES, BIG_CHILDREN = 100, 99  # 1 root + 100 scenes x (1 + 99) = 10,001 operations
BIG_TARGET_MS = 1000.0  # the issue: the page of a 10,000-operation session under 1 s
BROWSER_TARGET_MS = 2000.0  # ... and interactive in Chromium in under 2 s
BROWSER_REPEATS = 5
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
FIGURES_DRAWN = ("() => [...document.querySelectorAll('[data-figure]')]"
                 ".every(el => el.classList.contains('js-plotly-plot'))")


def big_session_payload(session_id: str) -> dict:
    """A script run with 100 scenes in parallel, each making 25 model calls, 25 cache
    look-ups and 49 dialogue lines: repeated siblings, as a real generator has."""
    start = NOW - timedelta(hours=1)

    def at(s: float) -> str:
        return (start + timedelta(seconds=s)).isoformat()

    ops = [{"id": "root", "name": "generate_full_script", "started_at": at(0),
            "ended_at": at(600), "duration_s": 600.0, "success": True}]
    names = ["call_llm"] * 25 + ["cache_lookup"] * 25 + ["dialogue_line"] * 49
    for scene in range(BIG_SCENES):
        begin = 1.0 + (scene % 10) * 50
        ops.append({"id": f"s{scene}", "parent_id": "root", "name": "scene_generation",
                    "started_at": at(begin), "ended_at": at(begin + 50), "duration_s": 50.0,
                    "success": True, "metadata": {"scene": scene + 1}})
        for c, name in enumerate(names[:BIG_CHILDREN]):
            t = begin + c * 0.5
            ops.append({"id": f"s{scene}c{c}", "parent_id": f"s{scene}", "name": name,
                        "started_at": at(t), "ended_at": at(t + 0.4), "duration_s": 0.4,
                        "success": not (scene == 7 and c == 3)})
    return {"schema_version": 1, "session": {
        "id": session_id, "episode": "ep9000", "workflow": "script_generation",
        "status": "completed", "started_at": at(0), "ended_at": at(600),
        "counters": {"scenes_generated": BIG_SCENES}}, "operations": ops, "api_calls": []}


def big_session_main() -> None:
    database = recreate_database(PG, BIG_DB)
    setup_django(database)
    migrate()
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    from metrics.analysis.analyze import analyze_session
    from metrics.models import Project

    project = Project.objects.get(slug="default")
    session = store_payload(project, SessionPayload.model_validate(
        big_session_payload("big"))).session
    analyze_session(session)
    client = logged_in_client()
    urls = {"session_page": "/sessions/big/",
            "group_details": "/sessions/big/operations/?parent=s7&name=call_llm"}
    medians = {}
    for name, url in urls.items():
        client.get(url)  # warm-up
        times = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        medians[name] = round(statistics.median(times), 1)
    interactive_ms = browser_interactive_ms("/sessions/big/", client)
    print(json.dumps({
        "operations": counts()["operations"],
        "median_ms": medians,
        "reference_ms": BIG_TARGET_MS,
        "ratio_to_reference": round(medians["session_page"] / BIG_TARGET_MS, 3),
        "browser_interactive_ms": interactive_ms,
        "browser_reference_ms": BROWSER_TARGET_MS,
        "browser_ratio_to_reference": round(interactive_ms / BROWSER_TARGET_MS, 3),
        "target_met": medians["session_page"] < BIG_TARGET_MS
        and interactive_ms < BROWSER_TARGET_MS,
    }))


def browser_interactive_ms(path: str, client) -> float:
    """Median time from navigation until every figure on the page is drawn, in headless
    Chromium against a live server on loopback (static files served as in development)."""
    from django.conf import settings
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread
    from playwright.sync_api import sync_playwright

    server = LiveServerThread("127.0.0.1", StaticFilesHandler)
    server.daemon = True
    server.start()
    server.is_ready.wait(30)
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    times = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                 headless=True)
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie,
                                  "url": base}])
            page = context.new_page()
            for repeat in range(BROWSER_REPEATS + 1):  # the first is a warm-up
                began = time.perf_counter()
                response = page.goto(base + path, wait_until="load")
                assert response is not None and response.status == 200, response
                page.wait_for_function(FIGURES_DRAWN, timeout=30_000)
                if repeat:
                    times.append((time.perf_counter() - began) * 1000)
            browser.close()
    finally:
        server.terminate()
    return round(statistics.median(times), 1)


if __name__ == "__main__":
    if sys.argv[1:] == ["big-session"]:
        big_session_main()
    else:
        main()
