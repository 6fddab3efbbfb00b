"""Prices and budgets in the admin: validation, and changes that reach stored figures."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from metrics.models import (
    ApiCall,
    Budget,
    BudgetCheck,
    Episode,
    EpisodeCost,
    ModelPrice,
    PriceChange,
    Session,
)
from tests.admin.helpers import admin_url, logged_in, person, store
from tests.factories import T0, api_call, script_payload, session_payload

pytestmark = pytest.mark.django_db

MODEL = "house-model"


@pytest.fixture
def first_price(db) -> ModelPrice:
    return ModelPrice.objects.create(
        provider="openai", model=MODEL, input_per_mtok=Decimal(1), output_per_mtok=Decimal(1),
        valid_from=T0 - timedelta(days=10), source="house price list, 2026-11-01")


@pytest.fixture
def call(project, first_price) -> ApiCall:
    """One call of a million prompt tokens: its cost is the input price."""
    store(project, session_payload("s1", api_calls=[
        api_call("c1", model=MODEL, prompt_tokens=1_000_000, completion_tokens=0,
                 at_s=60)]))
    return ApiCall.objects.get()


def price_form(**overrides) -> dict:
    form = {
        "provider": "openai", "model": MODEL, "input_per_mtok": "2", "output_per_mtok": "4",
        "cached_input_per_mtok": "", "cache_write_per_mtok": "",
        "valid_from_0": T0.strftime("%Y-%m-%d"), "valid_from_1": T0.strftime("%H:%M:%S"),
        "source": "https://example.com/pricing, read 2026-11-20",
    }
    return {**form, **overrides}


def cost(call: ApiCall) -> Decimal:
    call.refresh_from_db()
    return call.cost_usd


def test_a_new_price_reprices_the_calls_it_covers_and_is_logged(
        editor, call, django_capture_on_commit_callbacks):
    assert cost(call) == Decimal(1)

    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(admin_url("modelprice", "add"), price_form())

    assert response.status_code == 302
    assert cost(call) == Decimal(2)
    added = ModelPrice.objects.get(valid_from=T0)
    assert LogEntry.objects.get(object_id=str(added.pk)).user.username == "eddie"


@pytest.mark.parametrize("field", ["input_per_mtok", "output_per_mtok",
                                   "cached_input_per_mtok", "cache_write_per_mtok"])
def test_a_negative_price_is_refused(editor, first_price, field):
    response = editor.post(admin_url("modelprice", "add"), price_form(**{field: "-0.01"}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert ModelPrice.objects.filter(model=MODEL).count() == 1


@pytest.mark.parametrize("source", ["", "   "])
def test_a_price_must_cite_its_source(editor, first_price, source):
    response = editor.post(admin_url("modelprice", "add"), price_form(source=source))

    assert "source" in response.context["adminform"].form.errors


def test_a_second_price_from_the_same_moment_is_refused(editor, first_price):
    moment = first_price.valid_from
    response = editor.post(admin_url("modelprice", "add"), price_form(
        valid_from_0=moment.strftime("%Y-%m-%d"), valid_from_1=moment.strftime("%H:%M:%S")))

    assert "valid_from" in response.context["adminform"].form.errors


def test_a_late_correction_may_go_anywhere_in_the_history(editor, first_price):
    earlier = first_price.valid_from - timedelta(days=30)
    response = editor.post(admin_url("modelprice", "add"), price_form(
        valid_from_0=earlier.strftime("%Y-%m-%d"), valid_from_1="00:00:00"))

    assert response.status_code == 302


def test_an_edit_keeps_the_row_between_its_neighbours(editor, first_price):
    last = ModelPrice.objects.create(
        provider="openai", model=MODEL, input_per_mtok=Decimal(3), output_per_mtok=Decimal(3),
        valid_from=T0 + timedelta(days=10), source="later list")
    url = admin_url("modelprice", "change", last.pk)

    before_first = first_price.valid_from - timedelta(days=1)
    response = editor.post(url, price_form(valid_from_0=before_first.strftime("%Y-%m-%d"),
                                           source="later list"))
    assert "valid_from" in response.context["adminform"].form.errors

    response = editor.post(url, price_form(valid_from_0=T0.strftime("%Y-%m-%d"),
                                           source="later list"))
    assert response.status_code == 302
    last.refresh_from_db()
    assert last.valid_from == T0


def test_provider_and_model_are_fixed_once_a_price_exists(editor, first_price):
    editor.post(admin_url("modelprice", "change", first_price.pk),
                price_form(model="other-model", valid_from_0="2026-11-10",
                           valid_from_1="10:00:00"))

    first_price.refresh_from_db()
    assert first_price.model == MODEL


def test_moving_a_price_later_reprices_the_calls_it_no_longer_covers(
        editor, call, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(admin_url("modelprice", "add"), price_form())
    assert cost(call) == Decimal(2)
    added = ModelPrice.objects.get(valid_from=T0)
    later = T0 + timedelta(days=1)

    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(admin_url("modelprice", "change", added.pk), price_form(
            valid_from_0=later.strftime("%Y-%m-%d")))

    assert response.status_code == 302
    assert cost(call) == Decimal(1)  # the call falls back to the first price


def test_deleting_a_price_reprices_its_calls(editor, call, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(admin_url("modelprice", "add"), price_form())
    added = ModelPrice.objects.get(valid_from=T0)

    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(admin_url("modelprice", "delete", added.pk), {"post": "yes"})

    assert response.status_code == 302
    assert cost(call) == Decimal(1)
    deleted = PriceChange.objects.order_by("pk").last()
    assert (deleted.kind, deleted.before["input_per_mtok"]) == ("deleted", "2")
    assert [(r.cost_before_usd, r.cost_after_usd) for r in deleted.repricings.all()] == [
        (Decimal(2), Decimal(1))]


def test_deleting_prices_from_the_list_records_and_reprices_each(
        editor, call, first_price, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(admin_url("modelprice", "changelist"), {
            "action": "delete_selected", "_selected_action": [first_price.pk], "post": "yes"})

    assert response.status_code == 302
    assert PriceChange.objects.order_by("pk").last().kind == "deleted"
    call.refresh_from_db()
    assert (call.cost_usd, call.cost_source) == (None, "unpriced")


def test_the_price_history_lists_only_the_sessions_of_ones_own_projects(
        editor, call, other_project, django_capture_on_commit_callbacks):
    store(other_project, session_payload("theirs", api_calls=[
        api_call("c1", model=MODEL, prompt_tokens=1_000_000, completion_tokens=0, at_s=60)]))
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(admin_url("modelprice", "add"), price_form())
    change = PriceChange.objects.order_by("pk").last()
    assert change.repricings.count() == 2  # both projects' sessions were repriced

    page = editor.get(admin_url("pricechange", "change", change.pk)).content.decode()

    assert "s1" in page and "theirs" not in page


def test_the_price_history_is_read_only_in_the_admin(editor, first_price):
    change = PriceChange.objects.get()

    assert editor.get(admin_url("pricechange", "changelist")).status_code == 200
    assert editor.get(admin_url("pricechange", "add")).status_code == 403
    assert editor.post(admin_url("pricechange", "delete", change.pk),
                       {"post": "yes"}).status_code == 403


# --- budgets ------------------------------------------------------------------------------

def budget_form(project, **overrides) -> dict:
    form = {"project": project.pk, "name": "fast", "workflow": "", "metric": "duration_s",
            "threshold": "10", "active": "on"}
    return {**form, **overrides}


@pytest.mark.parametrize(("metric", "threshold"), [
    ("cache_hit_rate", "60"), ("api_error_rate", "1.5"), ("duration_s", "-1")])
def test_a_budget_threshold_must_make_sense_for_its_metric(editor, project, metric,
                                                           threshold):
    response = editor.post(admin_url("budget", "add"),
                           budget_form(project, metric=metric, threshold=threshold))

    assert "threshold" in response.context["adminform"].form.errors


def test_a_new_threshold_re_judges_the_stored_checks_and_the_list_counts_violations(
        editor, project):
    Budget.objects.all().delete()
    editor.post(admin_url("budget", "add"), budget_form(project))
    budget = Budget.objects.get()
    store(project, script_payload("s1", scenes=3))  # 32 s: over 10 s
    assert editor.get(admin_url("budget")).context["cl"].result_list[0].failed_checks == 1

    response = editor.post(admin_url("budget", "change", budget.pk),
                           budget_form(project, threshold="60"))

    assert response.status_code == 302
    assert list(BudgetCheck.objects.values_list("passed", flat=True)) == [True]
    assert editor.get(admin_url("budget")).context["cl"].result_list[0].failed_checks == 0
    assert "Changed Threshold." in [e.get_change_message() for e in LogEntry.objects.all()]


def test_the_overview_counts_violations_after_a_new_threshold_or_a_deleted_budget(
        editor, project):
    Budget.objects.all().delete()
    editor.post(admin_url("budget", "add"), budget_form(project))  # at most 10 s
    editor.post(admin_url("budget", "add"), budget_form(project, name="slow", threshold="20"))
    for n in range(3):
        store(project, script_payload(f"s{n}", scenes=3))  # 32 s: over both

    def violations() -> int:
        return editor.get("/?period=all").context["kpis"]["budget_violations"]

    def listed() -> set[str]:
        response = editor.get("/sessions/?period=all&problem=violations")
        return {s.external_id for s in response.context["sessions"]}

    assert violations() == 6 and listed() == {"s0", "s1", "s2"}
    editor.post(admin_url("budget", "change", Budget.objects.get(name="fast").pk),
                budget_form(project, threshold="60"))
    assert violations() == 3
    slow = Budget.objects.get(name="slow")
    editor.post(admin_url("budget", "delete", slow.pk), {"post": "yes"})
    assert not Budget.objects.filter(pk=slow.pk).exists()
    assert violations() == 0 and listed() == set()


def test_a_budgets_metric_is_fixed_once_it_exists(editor, project):
    budget = Budget.objects.create(project=project, name="fast", metric="duration_s",
                                   threshold=10)

    editor.post(admin_url("budget", "change", budget.pk),
                budget_form(project, metric="cost_usd"))

    budget.refresh_from_db()
    assert budget.metric == "duration_s"


# --- episodes -----------------------------------------------------------------------------

def test_the_episode_admin_shows_totals_and_recent_sessions(editor, project):
    for n in range(3):
        store(project, script_payload(f"s{n}", episode="ep001",
                                      started_at=T0 + timedelta(hours=n)))
    episode = Episode.objects.get(code="ep001")

    listing = editor.get(admin_url("episode")).context["cl"].result_list[0]
    page = editor.get(admin_url("episode", "change", episode.pk)).content.decode()

    assert (listing.sessions_total, listing.duration_sum_s) == (3, 96.0)
    assert listing.tokens_sum == 3 * Session.objects.get(external_id="s0").total_tokens
    assert all(f">s{n}</a>" in page for n in range(3))
    assert f"/admin/metrics/session/?episode__id__exact={episode.pk}" in page


def test_an_editor_edits_an_episodes_title_but_not_its_code(editor, project):
    store(project, script_payload("s1", episode="ep001"))
    episode = Episode.objects.get()

    response = editor.post(admin_url("episode", "change", episode.pk),
                           {"code": "renamed", "title": "The Pilot", "notes": ""})

    assert response.status_code == 302
    episode.refresh_from_db()
    assert (episode.code, episode.title) == ("ep001", "The Pilot")
    assert LogEntry.objects.get().get_change_message() == "Changed Title."


def test_deleting_an_episode_moves_its_sessions_figures_out_of_it(
        project, django_capture_on_commit_callbacks):
    store(project, script_payload("s1", episode="ep001"))
    root = logged_in(person("root", superuser=True))
    episode = Episode.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        root.post(admin_url("episode", "delete", episode.pk), {"post": "yes"})

    assert Session.objects.get().episode is None
    assert list(EpisodeCost.objects.values_list("episode", flat=True)) == [""]
