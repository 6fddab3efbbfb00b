"""Dashboard pages. Views gather data through selectors and hand it to templates."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from metrics import permissions, selectors
from metrics.forms import AnnotationForm
from metrics.links import session_url
from metrics.models import DEFAULT_PROJECT_SLUG, Annotation, Project

LATEST_SESSIONS = 20


def _current_project(request: HttpRequest) -> Project:
    slug = request.GET.get("project") or DEFAULT_PROJECT_SLUG
    return get_object_or_404(Project, slug=slug)


def dashboard_view(view):
    """Login required, then the dashboard permission (403 for a user without a role)."""

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not permissions.can_view_dashboard(request.user):
            raise PermissionDenied("You need the Producers or Editors role to see this.")
        return view(request, *args, **kwargs)

    return guarded


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    project = _current_project(request)
    latest = selectors.sessions(project=project, filters=selectors.SessionFilters())
    return render(
        request,
        "metrics/overview.html",
        {"project": project, "sessions": latest[:LATEST_SESSIONS]},
    )


def _session_or_404(request: HttpRequest, external_id: str):
    project = _current_project(request)
    session = selectors.session_by_external_id(project=project, external_id=external_id)
    if session is None:
        raise Http404("No such session in this project")
    return project, session


@dashboard_view
def session_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    project, session = _session_or_404(request, external_id)
    return render(
        request,
        "metrics/session_detail.html",
        {
            "project": project,
            "session": session,
            "bottlenecks": session.operation_stats.filter(is_bottleneck=True).order_by("-share"),
            "slowest": selectors.slowest_operations(session),
            "annotations": session.annotations.select_related("author"),
            "annotation_form": AnnotationForm() if permissions.can_annotate(request.user)
            else None,
        },
    )


@require_POST
@dashboard_view
def add_annotation(request: HttpRequest, external_id: str) -> HttpResponse:
    if not permissions.can_annotate(request.user):
        raise PermissionDenied("You may not annotate sessions.")
    _, session = _session_or_404(request, external_id)
    form = AnnotationForm(request.POST)
    if form.is_valid():
        Annotation.objects.create(session=session, author=request.user,
                                  text=form.cleaned_data["text"])
        messages.success(request, "Annotation added.")
    else:
        messages.error(request, "An annotation needs some text (at most 5,000 characters).")
    return redirect(session_url(session))
