"""Times in the zone each person picks (default: the site's TIME_ZONE), labelled.

The choice is kept in the person's login session as well as in their preference row, so
showing a page costs no query for it: the row is read once, when they log in.
"""

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from metrics.models import DashboardPreference

SESSION_KEY = "perfmon_time_zone"


@cache
def zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def is_zone(name: str) -> bool:
    return name in set(zone_names())


class UserTimeZoneMiddleware:
    """Activates the person's zone for the request; the site's zone otherwise."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        name = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if name and is_zone(name):
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def save_time_zone(request: HttpRequest, name: str) -> None:
    """Store the person's choice (blank: the site's zone) and use it from now on."""
    DashboardPreference.objects.update_or_create(user=request.user,
                                                 defaults={"time_zone": name})
    remember(request, name)


def remember(request: HttpRequest, name: str) -> None:
    if name:
        request.session[SESSION_KEY] = name
    else:
        request.session.pop(SESSION_KEY, None)


def current_zone_name(request: HttpRequest) -> str:
    return request.session.get(SESSION_KEY) or settings.TIME_ZONE


@receiver(user_logged_in, dispatch_uid="perfmon-time-zone-on-login")
def load_time_zone(sender, request: HttpRequest, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    name = (DashboardPreference.objects.filter(user=user)
            .values_list("time_zone", flat=True).first())
    remember(request, name or "")
