"""Three page reads from the per-session figures analysis keeps, checked by hand and after
retention removed a run's raw operations and calls: the what-if at today's price, the
compare page's cost by operation, the operations page's durations by episode."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metrics import retention
from metrics.analysis.analyze import analyze_session
from metrics.analysis.pricing import what_if_cost
from metrics.dashboard.comparisons import compare_episodes
from metrics.dashboard.filters import DashboardFilters
from metrics.models import ApiCall, ModelPrice, OperationStat, Session
from tests.factories import T0, api_call, operation, session_payload

pytestmark = pytest.mark.django_db

LATER = T0 + timedelta(days=10)


def analyzed(api, payload) -> Session:
    assert api.post("/sessions", payload).status_code in (200, 201)
    session = Session.objects.get(external_id=payload["session"]["id"])
    analyze_session(session)
    return session


def prune_all_but(*kept: str) -> None:
    """Retention removes the raw rows of every run but ``kept`` (pinned)."""
    Session.objects.filter(external_id__in=kept).update(is_pinned=True)
    retention.prune(older_than_days=1, now=LATER)


# --- what if -------------------------------------------------------------------------------


@pytest.fixture
def prices(db):
    sheet = {"valid_from": T0 - timedelta(days=30), "source": "test price sheet"}
    ModelPrice.objects.create(
        provider="acme", model="writer-1", input_per_mtok=Decimal(2), output_per_mtok=Decimal(10),
        cached_input_per_mtok=Decimal("0.5"), cache_write_per_mtok=Decimal(3),
        cache_write_1h_per_mtok=Decimal(4), **sheet)
    ModelPrice.objects.create(
        provider="acme", model="cheap-1", input_per_mtok=Decimal(1), output_per_mtok=Decimal(5),
        cached_input_per_mtok=Decimal("0.25"), cache_write_per_mtok=Decimal("1.5"),
        cache_write_1h_per_mtok=Decimal(2), **sheet)


@pytest.fixture
def ledger_runs(api, prices):
    """ep001: a run with every token kind (to be pruned) and a plain one (kept)."""
    analyzed(api, session_payload("ep001_run1", api_calls=[api_call(
        "c1", provider="acme", model="writer-1", prompt_tokens=1_000_000,
        completion_tokens=100_000, cached_tokens=200_000, cache_write_tokens=300_000,
        cache_write_1h_tokens=100_000)]))
    analyzed(api, session_payload("ep001_run2", started_at=T0 + timedelta(hours=1),
                                  api_calls=[api_call("c1", provider="acme", model="writer-1",
                                                      prompt_tokens=1_000_000,
                                                      completion_tokens=0)]))


# run 1 as cheap-1: uncached input 500k × $1 + output 100k × $5 + cached 200k × $0.25
# + 5-minute writes 200k × $1.5 + 1-hour writes 100k × $2; run 2: 1M input × $1
CHEAP = (Decimal("0.5") + Decimal("0.5") + Decimal("0.05") + Decimal("0.3") + Decimal("0.2")
         + Decimal(1))
# the same at writer-1's prices: 1.0 + 1.0 + 0.1 + 0.6 + 0.4, and 2.0
ACTUAL = Decimal("3.1") + Decimal(2)


def test_what_if_at_todays_price_sums_the_rollup_and_keeps_pruned_runs(project, ledger_runs):
    def priced():
        [row] = what_if_cost(project=project, episodes=["ep001"], provider="acme",
                             model="cheap-1")
        return row.calls, row.actual_cost_usd, row.what_if_cost_usd

    assert priced() == (2, ACTUAL, CHEAP)
    prune_all_but("ep001_run2")
    assert not ApiCall.objects.filter(session__external_id="ep001_run1").exists()

    with CaptureQueriesContext(connection) as queries:
        assert priced() == (2, ACTUAL, CHEAP)
    assert not any("metrics_apicall" in q["sql"] for q in queries.captured_queries)


def test_what_if_at_each_calls_time_says_which_runs_aged_out(viewer, project, ledger_runs):
    prune_all_but("ep001_run2")

    response = viewer.get("/costs/?period=all&whatif_episodes=ep001&whatif_model=acme/cheap-1"
                          "&whatif_prices=at_call")

    what_if = response.context["what_if"]
    [row] = what_if["rows"]
    assert (row.calls, row.what_if_cost_usd) == (1, Decimal(1))  # run 2 only
    assert what_if["aged_out_sessions"] == 1
    html = response.content.decode()
    assert 'id="what-if-aged-out"' in html and "1 run of these episodes has no calls" in html

    today = viewer.get("/costs/?period=all&whatif_episodes=ep001&whatif_model=acme/cheap-1")
    assert "what-if-aged-out" not in today.content.decode()
    assert [r.what_if_cost_usd for r in today.context["what_if"]["rows"]] == [CHEAP]


# --- compare: cost by operation ----------------------------------------------------------------


@pytest.fixture
def costed_runs(api):
    """One run per episode, client-priced calls in two operations and outside any."""
    ops = [operation("o1", "draft", start_s=0, duration_s=2),
           operation("o2", "polish", start_s=2, duration_s=1)]
    analyzed(api, session_payload("ep001_run1", episode="ep001", operations=ops, api_calls=[
        api_call("c1", operation_id="o1", cost_usd=0.25),
        api_call("c2", operation_id="o1", cost_usd=0.5),
        api_call("c3", operation_id="o2", cost_usd=0.125),
        api_call("c4", cost_usd=1.0),
    ]))
    analyzed(api, session_payload("ep002_run1", episode="ep002", operations=ops[:1], api_calls=[
        api_call("c1", operation_id="o1", cost_usd=0.75), api_call("c2", cost_usd=0.25),
    ]))


BY_HAND = {
    "ep001": {"draft": Decimal("0.75"), "polish": Decimal("0.125"),
              "(no operation)": Decimal(1)},
    "ep002": {"draft": Decimal("0.75"), "(no operation)": Decimal("0.25")},
}


def test_analysis_keeps_each_names_call_cost(costed_runs):
    stats = dict(OperationStat.objects.filter(session__external_id="ep001_run1")
                 .values_list("name", "cost_usd"))
    assert stats == {"draft": Decimal("0.75"), "polish": Decimal("0.125")}


def test_cost_by_operation_reads_no_call_and_stays_after_pruning(project, costed_runs):
    def op_cost():
        with CaptureQueriesContext(connection) as queries:
            comparison = compare_episodes(project, DashboardFilters(period="all"),
                                          ["ep001", "ep002"])
        assert not any("metrics_apicall" in q["sql"] for q in queries.captured_queries)
        return comparison.op_cost

    assert op_cost() == BY_HAND
    prune_all_but()
    assert Session.objects.filter(detail_pruned_at__isnull=False).count() == 2
    assert op_cost() == BY_HAND


# --- operations: durations by episode ----------------------------------------------------------


@pytest.fixture
def timed_runs(api):
    def run(session_id: str, episode: str, durations: list[float], hours: int):
        ops = [operation(f"o{n}", "draft", start_s=n * 20, duration_s=d)
               for n, d in enumerate(durations)]
        analyzed(api, session_payload(session_id, episode=episode, operations=ops,
                                      duration_s=100, started_at=T0 + timedelta(hours=hours)))

    run("ep001_run1", "ep001", [1.0, 2.0, 3.0], 0)
    run("ep001_run2", "ep001", [4.0, 5.0], 1)
    run("ep002_run1", "ep002", [10.0], 2)


def test_durations_by_episode_leave_out_and_count_the_pruned_runs(viewer, timed_runs):
    path = "/operations/?period=all&name=draft"
    before = viewer.get(path).context["by_episode"]
    # nearest rank: the value at rank ceil(q × n) of 1, 2, 3, 4, 5
    assert before["ep001"] == {"n": 5, 0.05: 1.0, 0.25: 2.0, 0.5: 3.0, 0.75: 4.0, 0.95: 5.0}
    assert before["ep002"]["n"] == 1

    prune_all_but("ep001_run2", "ep002_run1")
    response = viewer.get(path)

    # ranks of 4, 5: ceil(0.05 × 2) = 1, ceil(0.5 × 2) = 1, ceil(0.75 × 2) = 2
    assert response.context["by_episode"]["ep001"] == {
        "n": 2, 0.05: 4.0, 0.25: 4.0, 0.5: 4.0, 0.75: 5.0, 0.95: 5.0}
    assert response.context["by_episode"]["ep002"] == before["ep002"]
    assert response.context["aged_out_runs"] == 1
    html = response.content.decode()
    assert 'id="episodes-aged-out"' in html
    assert "1 run&#x27;s detail aged out" in html or "1 run's detail aged out" in html
