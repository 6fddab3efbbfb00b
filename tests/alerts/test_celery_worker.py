"""On PostgreSQL with a Redis broker: a real worker analyzes, alerts and retries."""

import pytest
from django.conf import settings

from metrics.alerts.models import AlertDelivery
from tests.alerts.conftest import channel_to, rule_for
from tests.analysis.test_celery_worker import Workers, wait_for
from tests.factories import api_call, session_payload

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workers():
    workers = Workers()
    # The worker's own settings: a short wait between attempts, so the retry comes soon.
    workers.env.update(ALERT_RETRY_BACKOFF_S="1", ALERT_HTTP_TIMEOUT_S="2")
    workers.purge()
    yield workers
    workers.stop_all()


def test_a_worker_retries_a_500_with_celery_and_delivers_once(api, project, make_receiver,
                                                              workers):
    flaky = make_receiver(500, 200)
    channel, secret = channel_to(project, flaky.url)
    rule_for(project, channel)
    worker = workers.start()

    failed = session_payload("ep002_run3", episode="ep002", status="failed",
                             api_calls=[api_call("c1", cost_usd=0.02)])
    assert api.post("/sessions", failed).status_code == 201
    assert not settings.CELERY_TASK_ALWAYS_EAGER

    assert wait_for(lambda: AlertDelivery.objects.filter(status="sent").exists())
    delivery = AlertDelivery.objects.get()
    assert (delivery.attempts, delivery.last_status) == (2, 200)
    assert len(flaky.requests) == 2
    # The generator sends the run again: the worker re-analyzes it and sends nothing new.
    assert api.post("/sessions", failed).status_code == 200
    assert wait_for(lambda: _analyzed_after_merge(), timeout_s=60)
    assert AlertDelivery.objects.count() == 1 and len(flaky.requests) == 2
    assert worker.poll() is None


def _analyzed_after_merge() -> bool:
    from metrics.models import Session
    session = Session.objects.get()
    return session.analyzed_at is not None and session.analyzed_at >= session.merged_at
