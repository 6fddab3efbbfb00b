"""Alert channels for automation: `alert_channel add` and `alert_channel list`."""

from decimal import Decimal
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from metrics.alerts.models import AlertChannel, AlertDelivery, AlertRule, EventKind
from metrics.models import DEFAULT_PROJECT_SLUG, Project

DEFAULT_EVENTS = "budget_failed,regression,session_failed"


class Command(BaseCommand):
    help = ("Add an alert channel (and a rule sending the chosen events to it), printing the "
            "channel's signing secret alone on the last line; or list the channels.")

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True)
        add = commands.add_parser("add", help="add a channel and its rule")
        add.add_argument("name")
        where = add.add_mutually_exclusive_group(required=True)
        where.add_argument("--webhook", metavar="URL", help="signed JSON POSTed to URL")
        where.add_argument("--slack", metavar="URL", help="a Slack-compatible incoming webhook")
        where.add_argument("--email", metavar="ADDR", help="comma-separated addresses")
        add.add_argument("--project", default=DEFAULT_PROJECT_SLUG)
        add.add_argument("--on", default=DEFAULT_EVENTS, metavar="KINDS",
                         help=f"comma-separated event kinds among {', '.join(EventKind.values)}"
                              " (default: %(default)s)")
        add.add_argument("--workflow", default="")
        add.add_argument("--environment", default="")
        add.add_argument("--cooldown-minutes", type=int, default=10)
        add.add_argument("--spend-limit", type=Decimal, metavar="USD")
        add.add_argument("--window-hours", type=int, default=24)
        add.add_argument("--monthly-limit", type=Decimal, metavar="USD")
        add.add_argument("--silence-hours", type=float, metavar="H")
        listing = commands.add_parser("list", help="list the channels")
        listing.add_argument("--project", default=None)

    def handle(self, *args, subcommand: str, **options) -> None:
        if subcommand == "add":
            self.add(**options)
        else:
            self.list_channels(project=options["project"])

    def add(self, *, name: str, project: str, **options) -> None:
        target = self._project(project)
        channel = _channel(target, name, options)
        rule = _rule(target, name, options)
        with transaction.atomic():
            secret = channel.set_new_secret()
            channel.save()
            rule.save()
            rule.channels.add(channel)
        self.stdout.write(f"Channel {name!r} ({channel.kind}) of project {target.slug!r}, "
                          f"alerting on {', '.join(rule.events)}. Its signing secret is shown "
                          "only this once:")
        self.stdout.write(secret)

    def _project(self, slug: str) -> Project:
        project = Project.objects.filter(slug=slugify(slug)).first()
        if project is None:
            raise CommandError(f"No project {slug!r}.")
        return project

    def list_channels(self, *, project: str | None) -> None:
        channels = AlertChannel.objects.select_related("project").prefetch_related("rules")
        if project:
            channels = channels.filter(project=self._project(project))
        for channel in channels:
            last = channel.deliveries.order_by("-created_at", "-id").first()
            self.stdout.write("\t".join([
                channel.project.slug, channel.name, channel.kind, _destination(channel),
                "active" if channel.active else "inactive",
                "rules: " + (", ".join(r.name for r in channel.rules.all()) or "-"),
                f"last delivery: {_last(last)}",
            ]))


def _channel(project: Project, name: str, options: dict) -> AlertChannel:
    kind, where = next((k, options[k]) for k in ("webhook", "slack", "email") if options[k])
    channel = AlertChannel(project=project, name=name, kind=kind,
                           url=where if kind != "email" else "",
                           addresses=where if kind == "email" else "")
    _validated(channel, exclude=["secret_encrypted"])
    return channel


def _rule(project: Project, name: str, options: dict) -> AlertRule:
    events = [kind.strip() for kind in options["on"].split(",") if kind.strip()]
    rule = AlertRule(project=project, name=name, events=events,
                     workflow=options["workflow"], environment=options["environment"],
                     cooldown_minutes=options["cooldown_minutes"],
                     spend_limit_usd=options["spend_limit"],
                     spend_window_hours=options["window_hours"],
                     monthly_limit_usd=options["monthly_limit"],
                     silence_after_hours=options["silence_hours"])
    _validated(rule)
    return rule


def _validated(obj, **kwargs) -> None:
    try:
        obj.full_clean(**kwargs)
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" if field != "__all__"
                             else " ".join(msgs)
                             for field, msgs in error.message_dict.items())
        raise CommandError(problems) from None


def _destination(channel: AlertChannel) -> str:
    # The host only: a Slack webhook's path is itself a credential.
    return channel.addresses if channel.kind == "email" else urlsplit(channel.url).netloc


def _last(delivery: AlertDelivery | None) -> str:
    if delivery is None:
        return "none"
    return f"{delivery.status} {delivery.created_at:%Y-%m-%d %H:%M} UTC"
