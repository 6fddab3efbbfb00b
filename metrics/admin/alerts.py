"""Alerts in the admin: Editors manage rules and channels; the delivery log is read-only.

A channel's secret is made when the channel is added and shown once, in the message that
confirms the save; after that it is stored encrypted and only the server reads it (to sign).
"""

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.utils.html import format_html

from metrics.admin.read_only import ReadOnly
from metrics.admin.scoping import ProjectScopedAdmin
from metrics.alerts.models import AlertChannel, AlertDelivery, AlertEvent, AlertRule, EventKind
from metrics.alerts.tasks import send_test_message


class AlertRuleForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EventKind.choices,
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = AlertRule
        fields = ["project", "name", "events", "workflow", "environment", "spend_limit_usd",
                  "spend_window_hours", "monthly_limit_usd", "silence_after_hours",
                  "cooldown_minutes", "channels", "active"]

    def clean(self):
        data = super().clean()
        project_id = data["project"].pk if data.get("project") else self.instance.project_id
        others = [c.name for c in data.get("channels", []) if c.project_id != project_id]
        if others:
            self.add_error("channels", f"Not channels of this project: {', '.join(others)}")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(ProjectScopedAdmin):
    form = AlertRuleForm
    list_display = ["name", "project", "event_kinds", "workflow_or_all", "environment",
                    "cooldown_minutes", "active"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter), "active"]
    list_select_related = ["project"]
    search_fields = ["name", "workflow"]
    filter_horizontal = ["channels"]

    @admin.display(description="events")
    def event_kinds(self, obj) -> str:
        return ", ".join(obj.events)

    @admin.display(description="workflow", ordering="workflow")
    def workflow_or_all(self, obj) -> str:
        return obj.workflow or "(all)"


@admin.register(AlertChannel)
class AlertChannelAdmin(ProjectScopedAdmin):
    list_display = ["name", "project", "kind", "destination", "active", "created_at"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter), "kind", "active"]
    list_select_related = ["project"]
    search_fields = ["name"]
    fields = ["project", "name", "kind", "url", "addresses", "active"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["send_test", "rotate_secret"]

    @admin.display(description="sends to")
    def destination(self, obj) -> str:
        # The host only: a Slack webhook's path is itself a credential.
        if obj.kind == AlertChannel.Kind.EMAIL:
            return obj.addresses
        return urlsplit(obj.url).netloc

    def save_model(self, request, obj, form, change) -> None:
        secret = None if change else obj.set_new_secret()
        super().save_model(request, obj, form, change)
        if secret:
            self.message_user(request, format_html(
                "Signing secret of {}, shown only this once: <code>{}</code>", obj, secret),
                messages.WARNING)

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test(self, request, queryset) -> None:
        scheduled = [(channel, send_test_message(channel)) for channel in queryset]
        for channel, item in scheduled:
            delivery = AlertDelivery.objects.get(pk=item.delivery_pk)
            level = messages.ERROR if delivery.status == AlertDelivery.Status.FAILED else (
                messages.SUCCESS)
            self.message_user(request, f"Test message to {channel}: {_result(delivery)}",
                              level)

    @admin.action(description="Make a new signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset) -> None:
        for channel in queryset:
            secret = channel.set_new_secret()
            channel.save(update_fields=["secret_encrypted"])
            self.message_user(request, format_html(
                "New signing secret of {}, shown only this once: <code>{}</code>",
                channel, secret), messages.WARNING)


def _result(delivery: AlertDelivery) -> str:
    if delivery.status == AlertDelivery.Status.SENT:
        return "sent" + (f" (HTTP {delivery.last_status})" if delivery.last_status else "")
    if delivery.status in (AlertDelivery.Status.FAILED, AlertDelivery.Status.RETRYING):
        return f"{delivery.status}: {delivery.last_error}"
    return "queued (see the delivery log)"


class ReadOnlyAdmin(ReadOnly, ProjectScopedAdmin):
    project_path = "rule__project"


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    project_path = "channel__project"  # a test message has no rule
    list_display = ["created_at", "rule", "channel", "event_count", "status", "attempts",
                    "last_status", "last_error_short", "sent_at"]
    list_filter = ["status", "is_test", "channel"]
    list_select_related = ["rule", "channel"]
    fields = ["rule", "channel", "is_test", "events", "status", "attempts", "last_status",
              "last_error", "not_before", "next_attempt_at", "created_at", "sent_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_events=Count("events"))

    @admin.display(description="events", ordering="n_events")
    def event_count(self, obj) -> int:
        return obj.n_events

    @admin.display(description="last error")
    def last_error_short(self, obj) -> str:
        return obj.last_error[:120]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "rule", "kind", "summary", "link"]
    list_filter = ["kind", "rule"]
    list_select_related = ["rule"]
    search_fields = ["summary", "key"]

    @admin.display(description="link")
    def link(self, obj) -> str:
        return format_html('<a href="{}">open</a>', obj.url) if obj.url else "-"
