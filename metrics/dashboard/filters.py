"""Dashboard filters: read from the query string, applied to sessions, written back to links.

Every page reads the same filters (period, workflow, environment, release, tag), so a URL
copied from the address bar shows the same view to whoever opens it.
"""

import json
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import QueryDict
from django.utils import timezone

from metrics.models import Project, Session

# label, days (None: everything)
PERIODS = {
    "1d": ("Last 24 hours", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
    "365d": ("Last year", 365),
    "all": ("All time", None),
    "custom": ("Custom dates", None),  # from / to, below
}
DEFAULT_PERIOD = "30d"
# How many distinct values a filter drop-down offers; the rest can still be typed in a URL.
MAX_CHOICES = 200


@dataclass(frozen=True)
class DashboardFilters:
    period: str = DEFAULT_PERIOD
    workflow: str = ""
    environment: str = ""
    release: str = ""
    tag: str = ""
    date_from: str = ""  # YYYY-MM-DD, with period "custom"; days in the viewer's zone
    date_to: str = ""  # inclusive

    @classmethod
    def from_query(cls, query: QueryDict) -> "DashboardFilters":
        period = query.get("period", DEFAULT_PERIOD)
        date_from, date_to = _iso_date(query.get("from")), _iso_date(query.get("to"))
        if date_from or date_to:
            period = "custom"
        elif period == "custom":
            period = "all"
        return cls(
            period=period if period in PERIODS else DEFAULT_PERIOD,
            date_from=date_from, date_to=date_to,
            workflow=query.get("workflow", "").strip()[:128],
            environment=query.get("environment", "").strip()[:64],
            release=query.get("release", "").strip()[:128],
            tag=query.get("tag", "").strip()[:200],
        )

    @property
    def since(self) -> datetime | None:
        if self.period == "custom":
            return _start_of(self.date_from) if self.date_from else None
        days = PERIODS[self.period][1]
        return None if days is None else timezone.now() - timedelta(days=days)

    @property
    def until(self) -> datetime | None:
        """The end (exclusive) of a custom range: the day after "to" begins."""
        if self.period != "custom" or not self.date_to:
            return None
        return _start_of(self.date_to) + timedelta(days=1)

    @property
    def period_label(self) -> str:
        if self.period == "custom":
            return f"{self.date_from or 'the start'} to {self.date_to or 'now'}"
        return PERIODS[self.period][0]

    @property
    def session_only(self) -> bool:
        """True when a filter is set that the rollups (by day/episode, workflow) cannot apply."""
        return self.needs_sessions()

    def needs_sessions(self, *, rollup_has: tuple[str, ...] = ()) -> bool:
        """True when a filter is set that a rollup with columns for the period, the
        workflow and ``rollup_has`` (of environment, release, tag) cannot apply."""
        return any(getattr(self, name) for name in ("environment", "release", "tag")
                   if name not in rollup_has)

    def sessions(self, project: Project) -> QuerySet[Session]:
        """The project's sessions that pass every filter (no ordering)."""
        return self.apply(Session.objects.filter(project=project))

    def apply(self, qs: QuerySet, prefix: str = "") -> QuerySet:
        """Filter ``qs`` whose sessions are reached through ``prefix`` (e.g. ``"session__"``)."""
        conditions = {}
        if self.since is not None:
            conditions[f"{prefix}started_at__gte"] = self.since
        if self.until is not None:
            conditions[f"{prefix}started_at__lt"] = self.until
        for name in ("workflow", "environment", "release"):
            if getattr(self, name):
                conditions[f"{prefix}{name}"] = getattr(self, name)
        qs = qs.filter(**conditions)
        if self.tag:
            qs = _with_tag(qs, prefix, self.tag)
        return qs

    def params(self, **overrides: str) -> dict[str, str]:
        """The non-default filters as query parameters."""
        current = replace(self, **overrides) if overrides else self
        defaults = DashboardFilters()
        params = {
            f.name: getattr(current, f.name)
            for f in fields(self)
            if getattr(current, f.name) != getattr(defaults, f.name)
        }
        # In the URL as from= / to=, which also say "custom" on their own.
        for name, key in (("date_from", "from"), ("date_to", "to")):
            if name in params:
                params[key] = params.pop(name)
        if "from" in params or "to" in params:
            params.pop("period", None)
        return params

    def is_default(self) -> bool:
        return not self.params()


def _iso_date(value: str | None) -> str:
    try:
        return date.fromisoformat((value or "").strip()[:10]).isoformat()
    except ValueError:
        return ""


def _start_of(day: str) -> datetime:
    """Midnight of that day in the viewer's time zone."""
    return datetime.combine(date.fromisoformat(day), time.min,
                            tzinfo=timezone.get_current_timezone())


def _with_tag(qs: QuerySet, prefix: str, tag: str) -> QuerySet:
    if connection.vendor == "postgresql":
        return qs.filter(**{f"{prefix}tags__contains": [tag]})
    # SQLite has no JSON containment; the stored text holds each tag JSON-quoted, so the
    # quoted tag matches exactly one element (a longer tag has other characters inside
    # its quotes, a quote inside a tag is escaped).
    return qs.annotate(_tags_text=Cast(f"{prefix}tags", TextField())).filter(
        _tags_text__contains=json.dumps(tag)
    )


def query_string(project: Project, filters: DashboardFilters, **extra) -> str:
    """``?project=…&period=…`` for links that keep the current view ("" when all default)."""
    params = {}
    if project.slug != "default":
        params["project"] = project.slug
    params.update(filters.params())
    params.update({key: value for key, value in extra.items() if value not in (None, "")})
    return "?" + urlencode(params, doseq=True) if params else ""


# The drop-downs offer the values of this many latest sessions; an older value still works
# typed into the URL (and stays selected when it is the current filter).
CHOICES_FROM_SESSIONS = 1000


def choices(project: Project, current: DashboardFilters | None = None) -> dict[str, list[str]]:
    """Workflows, environments and releases of the latest sessions, for the drop-downs.

    One bounded query through the session index, whatever the size of the project.
    """
    recent = Session.objects.filter(project=project).order_by("-started_at", "-id").values_list(
        "workflow", "environment", "release")[:CHOICES_FROM_SESSIONS]
    found: dict[str, set[str]] = {"workflow": set(), "environment": set(), "release": set()}
    for combo in recent:
        for name, value in zip(found, combo, strict=True):
            if value:
                found[name].add(value)
    for name in found:
        if current is not None and getattr(current, name):
            found[name].add(getattr(current, name))
    return {name: sorted(values)[:MAX_CHOICES] for name, values in found.items()}
