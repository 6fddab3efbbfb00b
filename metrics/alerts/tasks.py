"""Celery tasks for alerts: thin, by id, enqueued after the commit that made the work."""

from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from metrics.alerts import recording, sending
from metrics.alerts.models import AlertChannel, AlertDelivery
from metrics.alerts.recording import Scheduled
from metrics.models import Session


# The attempt count lives in the database (sending.record decides when to give up); Celery
# only carries the wait. On the embedded default (eager tasks) a retry is not run inline,
# which would hold the request that triggered it: the next analysis or check sends it.
# OperationalError (the database away) is retried a few times by Celery as elsewhere.
@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5)
def deliver(self, delivery_pk: int) -> str | None:
    delivery = sending.attempt(delivery_pk, now=timezone.now())
    if delivery is None:
        return None
    if delivery.status == AlertDelivery.Status.RETRYING and not self.request.is_eager:
        wait_s = (delivery.next_attempt_at - timezone.now()).total_seconds()
        raise self.retry(countdown=max(wait_s, 0), max_retries=settings.ALERT_MAX_ATTEMPTS)
    return delivery.status


@shared_task(acks_late=True)
def check_alerts() -> int:
    """Periodic: spend and silence, then every delivery that is due (cooldowns, retries)."""
    scheduled = recording.record_periodic_events(now=timezone.now())
    enqueue_after_commit(scheduled)
    return len(scheduled) + send_due()


def send_due() -> int:
    pks = sending.due_deliveries(now=timezone.now())
    for pk in pks:
        deliver.delay(pk)
    return len(pks)


def enqueue_after_commit(scheduled: list[Scheduled]) -> None:
    for item in scheduled:
        transaction.on_commit(partial(_enqueue, item), robust=True)


def _enqueue(item: Scheduled) -> None:
    # A failed publish (broker away) leaves the delivery due: check_alerts sends it.
    wait_s = (item.due - timezone.now()).total_seconds()
    deliver.apply_async((item.delivery_pk,), countdown=max(wait_s, 0))


def alert_on_session(session: Session) -> None:
    """After a session's analysis: record its events and send what is due."""
    session = Session.objects.select_related("project", "episode").get(pk=session.pk)
    enqueue_after_commit(recording.record_session_events(session, now=timezone.now()))
    if deliver.app.conf.task_always_eager:
        # Without a beat, a grouped message or a retry goes out with the next analysis.
        transaction.on_commit(send_due, robust=True)


def send_test_message(channel: AlertChannel) -> Scheduled:
    scheduled = recording.test_delivery(channel, now=timezone.now())
    enqueue_after_commit([scheduled])
    return scheduled
