"""Alerts: rules that watch what analysis decides, channels that carry the messages, the
events they saw and the log of every delivery.

metrics.models imports these, so they belong to the metrics app; they name the models
they point at as strings so that this module never imports metrics.models (no cycle).
"""

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from metrics.alerts import channel_secrets

MONEY_FIELD = {"max_digits": 18, "decimal_places": 8}


class EventKind(models.TextChoices):
    BUDGET_FAILED = "budget_failed", "A budget failed"
    REGRESSION = "regression", "A regression was found"
    SESSION_FAILED = "session_failed", "A session failed"
    SPEND = "spend", "Spend over a limit"
    SILENCE = "silence", "No session for longer than expected"


SESSION_KINDS = (EventKind.BUDGET_FAILED, EventKind.REGRESSION, EventKind.SESSION_FAILED)


class AlertChannel(models.Model):
    """Where messages go. The secret signs each HTTP delivery; it is shown once."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        SLACK = "slack", "Slack-compatible incoming webhook"
        EMAIL = "email", "E-mail"

    HTTP_KINDS = (Kind.WEBHOOK, Kind.SLACK)

    project = models.ForeignKey("metrics.Project", on_delete=models.CASCADE,
                                related_name="alert_channels")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=2000, blank=True,
                          validators=[URLValidator(schemes=["http", "https"])],
                          help_text="Webhook and Slack: messages are POSTed here and only "
                                    "here (redirects are not followed).")
    addresses = models.TextField(blank=True, help_text="E-mail: comma-separated addresses.")
    secret_encrypted = models.TextField(editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="alertchannel_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind in self.HTTP_KINDS and not self.url:
            raise ValidationError({"url": "A webhook channel needs the URL to POST to."})
        if self.kind == self.Kind.EMAIL and not self.recipients():
            raise ValidationError({"addresses": "An e-mail channel needs an address."})

    def recipients(self) -> list[str]:
        return [a.strip() for a in self.addresses.split(",") if a.strip()]

    def set_new_secret(self) -> str:
        """Make a new secret and return it: the only moment it is seen in clear."""
        secret = channel_secrets.new_secret()
        self.secret_encrypted = channel_secrets.encrypt(secret)
        return secret

    @property
    def secret(self) -> str:
        return channel_secrets.decrypt(self.secret_encrypted)


class AlertRule(models.Model):
    """What to watch in one project, and which channels to tell."""

    project = models.ForeignKey("metrics.Project", on_delete=models.CASCADE,
                                related_name="alert_rules")
    name = models.CharField(max_length=200)
    events = models.JSONField(default=list, help_text="The event kinds this rule alerts on.")
    workflow = models.CharField(max_length=128, blank=True, help_text="Blank: every workflow.")
    environment = models.CharField(max_length=64, blank=True,
                                   help_text="Blank: every environment.")
    spend_limit_usd = models.DecimalField(
        **MONEY_FIELD, null=True, blank=True,
        help_text="Spend: alert when the calls of the last window cost more than this.")
    spend_window_hours = models.PositiveIntegerField(default=24)
    monthly_limit_usd = models.DecimalField(
        **MONEY_FIELD, null=True, blank=True,
        help_text="Spend: alert when this month's spend, at its rate so far, would pass this "
                  "by the month's end.")
    silence_after_hours = models.FloatField(
        null=True, blank=True,
        help_text="Silence: alert when a workflow sent no session for this long.")
    cooldown_minutes = models.PositiveIntegerField(
        default=10, help_text="After a message, further events wait this long and go out "
                              "together in one message.")
    channels = models.ManyToManyField(AlertChannel, related_name="rules", blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="alertrule_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = set(self.events) - set(EventKind.values)
        if unknown or not self.events:
            raise ValidationError({"events": "Choose one or more of: "
                                             + ", ".join(EventKind.values)})
        if EventKind.SPEND in self.events and not (self.spend_limit_usd or
                                                   self.monthly_limit_usd):
            raise ValidationError("A spend rule needs a spend limit or a monthly limit.")
        if EventKind.SILENCE in self.events and not self.silence_after_hours:
            raise ValidationError({"silence_after_hours": "A silence rule needs the "
                                                          "expected interval."})

    def applies_to(self, *, workflow: str, environment: str) -> bool:
        return (self.workflow in ("", workflow)) and (self.environment in ("", environment))


class AlertEvent(models.Model):
    """Something a rule saw, once: the key makes a re-analysis or a resend a no-op."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alert_events")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    # session:<pk> for session events, window:<n> or month:<yyyy-mm> for spend,
    # <workflow>:<last session start> for silence.
    key = models.CharField(max_length=300)
    session = models.ForeignKey("metrics.Session", null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    summary = models.TextField()
    url = models.URLField(max_length=2000, blank=True)
    details = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "kind", "key"], name="alertevent_once"),
        ]

    def __str__(self) -> str:
        return self.summary[:80]


class JudgedSession(models.Model):
    """A finished session whose verdicts have been read for alerts, once.

    Alerts tell of runs as they finish. A later re-analysis (a resend, a new price, an
    edit, a baseline that moved) may change a verdict about the past; that is shown on
    the dashboard but not pushed to anyone again.
    """

    session = models.OneToOneField("metrics.Session", on_delete=models.CASCADE,
                                   primary_key=True, related_name="+")
    judged_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"session {self.session_id} judged {self.judged_at:%Y-%m-%d %H:%M}"


class AlertDelivery(models.Model):
    """One message to one channel, carrying one or more events: the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its time; later events of the rule join it
        SENDING = "sending"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    OPEN = (Status.PENDING, Status.SENDING, Status.RETRYING)

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="deliveries")  # null: a test message
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE,
                                related_name="deliveries")
    events = models.ManyToManyField(AlertEvent, related_name="deliveries", blank=True)
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True,
                                              help_text="The receiver's HTTP status.")
    last_error = models.TextField(blank=True)
    not_before = models.DateTimeField(help_text="When the message is due (the cooldown).")
    # Due time of the next attempt; while an attempt runs, the end of its lease.
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert deliveries"
        indexes = [
            # the periodic sender: open deliveries that are due
            models.Index(fields=["status", "next_attempt_at"], name="alertdelivery_due"),
            # the cooldown: a rule's latest delivery to a channel
            models.Index(fields=["rule", "channel", "-not_before"], name="alertdelivery_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"
