"""Links to dashboard pages, shared by the pages and the API."""

from urllib.parse import urlencode

from django.urls import reverse

from metrics.models import DEFAULT_PROJECT_SLUG, Session


def session_url(session: Session) -> str:
    """The dashboard page of a session, naming its project unless it is the default."""
    path = reverse("metrics:session_detail", args=[session.external_id])
    if session.project.slug != DEFAULT_PROJECT_SLUG:
        path += "?" + urlencode({"project": session.project.slug})
    return path
