"""Dashboard filters: read from the query string, applied to sessions, written back to links.

Every page reads the same filters (period, workflow, environment, release, tag), so a URL
copied from the address bar shows the same view to whoever opens it.
"""

import json
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
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

    @classmethod
    def from_query(cls, query: QueryDict) -> "DashboardFilters":
        period = query.get("period", DEFAULT_PERIOD)
        return cls(
            period=period if period in PERIODS else DEFAULT_PERIOD,
            workflow=query.get("workflow", "").strip()[:128],
            environment=query.get("environment", "").strip()[:64],
            release=query.get("release", "").strip()[:128],
            tag=query.get("tag", "").strip()[:200],
        )

    @property
    def since(self) -> datetime | None:
        days = PERIODS[self.period][1]
        return None if days is None else timezone.now() - timedelta(days=days)

    @property
    def period_label(self) -> str:
        return PERIODS[self.period][0]

    @property
    def session_only(self) -> bool:
        """True when a filter is set that the rollups (by day/episode, workflow) cannot apply."""
        return bool(self.environment or self.release or self.tag)

    def sessions(self, project: Project) -> QuerySet[Session]:
        """The project's sessions that pass every filter (no ordering)."""
        return self.apply(Session.objects.filter(project=project))

    def apply(self, qs: QuerySet, prefix: str = "") -> QuerySet:
        """Filter ``qs`` whose sessions are reached through ``prefix`` (e.g. ``"session__"``)."""
        conditions = {}
        if self.since is not None:
            conditions[f"{prefix}started_at__gte"] = self.since
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
        return {
            f.name: getattr(current, f.name)
            for f in fields(self)
            if getattr(current, f.name) != getattr(defaults, f.name)
        }

    def is_default(self) -> bool:
        return not self.params()


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
