"""One delivery's message: plain text for people, JSON for programs."""

from dataclasses import dataclass

from metrics.alerts.models import AlertDelivery


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict


def build(delivery: AlertDelivery) -> Message:
    if delivery.is_test:
        return _test_message(delivery)
    events = list(delivery.events.order_by("occurred_at", "pk"))
    if len(events) == 1:
        subject = events[0].summary
        text = f"{events[0].summary}\n{events[0].url}"
    else:
        subject = f"{len(events)} alerts from rule {delivery.rule}"
        text = f"{subject}:\n" + "\n".join(f"- {e.summary}\n  {e.url}" for e in events)
    payload = {
        "type": "perfmon.alert",
        "delivery": delivery.pk,
        "project": delivery.channel.project.slug,
        "rule": {"id": delivery.rule_id, "name": str(delivery.rule)},
        "text": text,
        "events": [
            {"id": e.pk, "kind": e.kind, "summary": e.summary, "url": e.url,
             "session": e.details.get("session"), "occurred_at": e.occurred_at.isoformat(),
             "details": e.details}
            for e in events
        ],
    }
    return Message(one_line(f"[perfmon] {subject}")[:200], text, payload)


def _test_message(delivery: AlertDelivery) -> Message:
    text = (f"Test message from perfmon to channel {delivery.channel} of project "
            f"{delivery.channel.project}: alerts will arrive like this.")
    payload = {"type": "perfmon.test", "delivery": delivery.pk,
               "project": delivery.channel.project.slug, "rule": None, "text": text,
               "events": []}
    return Message("[perfmon] test message", text, payload)


def one_line(text: str) -> str:
    """An e-mail subject is one header line: a name from the wire may hold line breaks."""
    return " ".join(text.split())


def slack_text(text: str) -> str:
    """Slack's escaping: only these three characters have a meaning in its text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
