"""One attempt at one delivery: claim it, send it, write down what happened.

The claim is a conditional UPDATE, so a Celery retry, the periodic sender and a redelivered
task never send the same delivery twice at once. While an attempt runs, next_attempt_at
holds the end of its lease: a worker that dies mid-send leaves a delivery that the periodic
sender picks up again once the lease is over.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F

from metrics.alerts import message, transport
from metrics.alerts.channel_secrets import UnreadableSecret
from metrics.alerts.models import AlertDelivery
from metrics.alerts.transport import Outcome

DUE_BATCH = 200

logger = logging.getLogger(__name__)


def lease() -> timedelta:
    return timedelta(seconds=2 * settings.ALERT_HTTP_TIMEOUT_S + 60)


def claim(delivery_pk: int, *, now: datetime) -> AlertDelivery | None:
    claimed = AlertDelivery.objects.filter(
        pk=delivery_pk, status__in=AlertDelivery.OPEN, next_attempt_at__lte=now,
    ).update(status=AlertDelivery.Status.SENDING, attempts=F("attempts") + 1,
             next_attempt_at=now + lease())
    if not claimed:
        return None  # sent, given up, not due yet, or being sent by someone else
    return AlertDelivery.objects.select_related("channel__project", "rule").get(pk=delivery_pk)


def attempt(delivery_pk: int, *, now: datetime) -> AlertDelivery | None:
    """Send the delivery if it is due; returns it as recorded, or None if not claimed."""
    delivery = claim(delivery_pk, now=now)
    if delivery is None:
        return None
    try:
        outcome = transport.send(delivery.channel, message.build(delivery),
                                 delivery_pk=delivery.pk)
    except UnreadableSecret as error:
        outcome = Outcome(False, error=str(error))
    except Exception as error:
        # A bug or a malformed channel: recorded as a failure the log shows, rather than a
        # delivery left "sending" and claimed again after every lease.
        logger.exception("alert delivery %s failed unexpectedly", delivery.pk)
        outcome = Outcome(False, error=f"unexpected error: {type(error).__name__}: {error}")
    return record(delivery, outcome, now=now)


def backoff_s(attempts: int) -> float:
    """BACKOFF after the first failure, doubling each time, up to the cap."""
    return min(settings.ALERT_RETRY_BACKOFF_S * 2 ** (attempts - 1),
               settings.ALERT_RETRY_MAX_BACKOFF_S)


def record(delivery: AlertDelivery, outcome: Outcome, *, now: datetime) -> AlertDelivery:
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error
    if outcome.sent:
        delivery.status, delivery.sent_at = AlertDelivery.Status.SENT, now
    elif outcome.retryable and delivery.attempts < settings.ALERT_MAX_ATTEMPTS:
        delivery.status = AlertDelivery.Status.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=backoff_s(delivery.attempts))
    else:
        delivery.status = AlertDelivery.Status.FAILED
    delivery.save(update_fields=["status", "sent_at", "last_status", "last_error",
                                 "next_attempt_at"])
    return delivery


def due_deliveries(*, now: datetime) -> list[int]:
    return list(AlertDelivery.objects.filter(status__in=AlertDelivery.OPEN,
                                             next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:DUE_BATCH])
