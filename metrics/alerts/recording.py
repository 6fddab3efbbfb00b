"""Events recorded once per rule, and the deliveries that will carry them.

A rule's row is locked while its events are recorded, so two analyses finishing at once
cannot both open a delivery for the same burst. The first event after a quiet spell goes
out at once; events within the cooldown after it wait and go out together, listed in one
message: the open (pending) delivery of the rule and channel collects them.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from metrics.alerts import triggers
from metrics.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    EventKind,
    JudgedSession,
)
from metrics.alerts.triggers import Draft
from metrics.models import Session


@dataclass(frozen=True)
class Scheduled:
    delivery_pk: int
    due: datetime


def record_session_events(session: Session, *, now: datetime) -> list[Scheduled]:
    """The verdicts of the analysis that first saw the session finished; later analyses of
    the same session are not news (JudgedSession). The caller holds the session's lock."""
    if not session.is_finished:
        return []
    _, first = JudgedSession.objects.get_or_create(session=session,
                                                   defaults={"judged_at": now})
    drafts = triggers.session_drafts(session) if first else []
    if not drafts:
        return []
    rules = AlertRule.objects.filter(project_id=session.project_id, active=True)
    scheduled = []
    for rule in rules:
        if not rule.applies_to(workflow=session.workflow, environment=session.environment):
            continue
        for draft in drafts:
            if draft.kind in rule.events:
                scheduled += record(rule, draft, now=now)
    return scheduled


def record_periodic_events(*, now: datetime) -> list[Scheduled]:
    """Spend and silence, for every active rule that watches them."""
    scheduled = []
    for rule in AlertRule.objects.filter(active=True).select_related("project"):
        drafts = []
        if EventKind.SPEND in rule.events:
            drafts += triggers.spend_drafts(rule, now=now)
        if EventKind.SILENCE in rule.events and rule.silence_after_hours:
            drafts += triggers.silence_drafts(rule, now=now)
        for draft in drafts:
            scheduled += record(rule, draft, now=now)
    return scheduled


def record(rule: AlertRule, draft: Draft, *, now: datetime) -> list[Scheduled]:
    """The event, unless the rule saw it before; and a delivery per channel for it."""
    with transaction.atomic():
        list(AlertRule.objects.select_for_update().filter(pk=rule.pk).values_list("pk"))
        event, created = AlertEvent.objects.get_or_create(
            rule=rule, kind=draft.kind, key=draft.key[:300],
            defaults={"summary": draft.summary, "url": draft.url, "details": draft.details,
                      "session": draft.session, "occurred_at": now},
        )
        if not created:
            return []
        channels = rule.channels.filter(active=True)
        return [s for channel in channels if (s := attach(rule, channel, event, now=now))]


def attach(rule: AlertRule, channel: AlertChannel, event: AlertEvent, *,
           now: datetime) -> Scheduled | None:
    """Join the open delivery of the rule and channel, or open one after the cooldown."""
    waiting = (AlertDelivery.objects.select_for_update()
               .filter(rule=rule, channel=channel, status=AlertDelivery.Status.PENDING)
               .order_by("not_before").first())
    if waiting is not None:
        waiting.events.add(event)
        return None
    last = (AlertDelivery.objects.filter(rule=rule, channel=channel)
            .order_by("-not_before").values_list("not_before", flat=True).first())
    due = now if last is None else max(now, last + timedelta(minutes=rule.cooldown_minutes))
    delivery = AlertDelivery.objects.create(rule=rule, channel=channel, not_before=due,
                                            next_attempt_at=due)
    delivery.events.add(event)
    return Scheduled(delivery.pk, due)


def test_delivery(channel: AlertChannel, *, now: datetime) -> Scheduled:
    delivery = AlertDelivery.objects.create(channel=channel, is_test=True, not_before=now,
                                            next_attempt_at=now)
    return Scheduled(delivery.pk, now)
