"""Dashboard pages. Views gather data through selectors and hand it to templates."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from metrics import selectors
from metrics.models import DEFAULT_PROJECT_SLUG, Project

LATEST_SESSIONS = 20


def _current_project(request: HttpRequest) -> Project:
    slug = request.GET.get("project") or DEFAULT_PROJECT_SLUG
    return get_object_or_404(Project, slug=slug)


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    project = _current_project(request)
    latest = selectors.sessions(project=project, filters=selectors.SessionFilters())
    return render(
        request,
        "metrics/overview.html",
        {"project": project, "sessions": latest[:LATEST_SESSIONS]},
    )


@login_required
def session_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    project = _current_project(request)
    session = selectors.session_by_external_id(project=project, external_id=external_id)
    if session is None:
        raise Http404("No such session in this project")
    return render(
        request,
        "metrics/session_detail.html",
        {
            "project": project,
            "session": session,
            "bottlenecks": session.operation_stats.filter(is_bottleneck=True).order_by("-share"),
            "slowest": selectors.slowest_operations(session),
        },
    )
