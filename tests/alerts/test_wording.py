"""What the messages say: the producer's words, the figures with units, by hand."""

import pytest

from metrics.alerts.models import AlertEvent, EventKind
from metrics.models import Budget
from tests.alerts.conftest import BASE_URL, channel_to, rule_for
from tests.factories import T0, api_call, session_payload

pytestmark = pytest.mark.django_db

HOUR = 3600


def run(session_id: str, *, cost: float, hours_later: float = 0, **fields) -> dict:
    from datetime import timedelta
    return session_payload(session_id, episode="ep012",
                           started_at=T0 + timedelta(hours=hours_later),
                           api_calls=[api_call("c1", cost_usd=cost, at_s=hours_later * HOUR)],
                           **fields)


@pytest.fixture
def per_run_budget(project) -> Budget:
    return Budget.objects.create(project=project, name="Under 20 cents a run",
                                 metric=Budget.Metric.COST_USD, threshold=0.20)


def test_a_cost_budget_failure_in_the_producers_words(project, receiver, ingest,
                                                       per_run_budget):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel, events=[EventKind.BUDGET_FAILED])
    ingest(run("ep012_run1", cost=0.10))
    ingest(run("ep012_run2", cost=0.29, hours_later=1))

    [message] = receiver.bodies()
    # (0.29 - 0.20) / 0.20 = 45 % over
    assert message["text"] == ("ep012 take 2 cost $0.29, budget $0.20 per run: 45% over\n"
                               f"{BASE_URL}/sessions/ep012_run2/")


def test_a_cost_regression_names_its_baseline(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel, events=[EventKind.REGRESSION])
    ingest(run("ep012_run1", cost=0.10))
    ingest(run("ep012_run2", cost=0.29, hours_later=1))

    [event] = AlertEvent.objects.all()
    # 0.29 / 0.10 = 2.90
    assert event.summary == ("ep012 take 2 regressed: cost $0.29, 2.90 times the previous run "
                             "($0.10)")


def test_a_fraction_of_a_cent_is_not_shown_as_zero(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel, events=[EventKind.SESSION_FAILED])
    ingest(run("ep012_run1", cost=0.004, status="failed"))

    [event] = AlertEvent.objects.all()
    assert event.summary.endswith("cost so far $0.0040")


def test_a_failed_run_of_unknown_duration_says_so(project, receiver, ingest):
    channel, _ = channel_to(project, receiver.url)
    rule_for(project, channel, events=[EventKind.SESSION_FAILED])
    ingest(run("ep012_run1", cost=0.05, status="failed", duration_s=None))

    [event] = AlertEvent.objects.all()
    assert event.summary == ("ep012 take 1 failed (duration unknown): 0 of 1 API calls failed,"
                             " cost so far $0.05")


def test_the_link_names_a_project_other_than_the_default(other_project, receiver,
                                                         django_capture_on_commit_callbacks):
    from ingest.schemas import SessionPayload
    from ingest.services import store_payload
    channel, _ = channel_to(other_project, receiver.url)
    rule_for(other_project, channel, events=[EventKind.SESSION_FAILED])
    with django_capture_on_commit_callbacks(execute=True):
        store_payload(other_project, SessionPayload.model_validate(
            run("ep012_run1", cost=0.05, status="failed")))

    [event] = AlertEvent.objects.all()
    assert event.url == f"{BASE_URL}/sessions/ep012_run1/?project=other-show"
