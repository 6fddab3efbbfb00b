"""Actions on selected sessions in the admin. Each change is written to the admin's history.

Actions that change sessions need the ``edit_session`` permission of SessionAdmin (the
Editors' ``metrics.change_session``); the exports only need to see sessions.
"""

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from metrics.admin import exports
from metrics.admin.forms import MoveToEpisodeForm
from metrics.dispatch import enqueue_after_commit
from metrics.episode_runs import refresh_latest_runs
from metrics.models import Session
from metrics.tasks import analyze_session

# The move form carries the selected ids back as POST fields (Django accepts at most
# DATA_UPLOAD_MAX_NUMBER_FIELDS, 1000 by default); listing them is for a human to read.
MAX_MOVED = 500
LISTED_ON_MOVE_PAGE = 20


def _sessions(queryset: QuerySet[Session]) -> list[Session]:
    # The changelist's queryset carries its display annotations; actions need plain rows.
    return list(
        Session.objects.filter(pk__in=queryset.values("pk"))
        .select_related("project", "episode")
        .order_by("-started_at", "-pk")
    )


def _log(request: HttpRequest, objects: list, message: str, flag: int = CHANGE) -> None:
    if objects:
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=objects, action_flag=flag, change_message=message
        )


def _analyze_after_commit(sessions: list[Session]) -> None:
    for session in sessions:
        enqueue_after_commit(analyze_session, session.pk)


@admin.action(description="Re-run analysis of selected sessions", permissions=["edit_session"])
def rerun_analysis(modeladmin, request: HttpRequest, queryset: QuerySet[Session]) -> None:
    sessions = _sessions(queryset)
    with transaction.atomic():
        _log(request, sessions, "Re-ran analysis.")
        _analyze_after_commit(sessions)
    modeladmin.message_user(request, f"Analysis re-run for {len(sessions)} session(s).")


def _set_baseline(modeladmin, request, queryset, *, baseline: bool) -> None:
    changed = [s for s in _sessions(queryset) if s.is_baseline != baseline]
    with transaction.atomic():
        Session.objects.filter(pk__in=[s.pk for s in changed]).update(is_baseline=baseline)
        _log(request, changed, "Marked as baseline." if baseline else "Unmarked as baseline.")
    verb = "marked as" if baseline else "removed from the"
    modeladmin.message_user(
        request,
        f"{len(changed)} session(s) {verb} baseline. Other runs of their workflows compare "
        "against the new baseline at their next analysis (Re-run analysis to do it now).",
    )


@admin.action(description="Mark selected sessions as baseline", permissions=["edit_session"])
def mark_baseline(modeladmin, request: HttpRequest, queryset: QuerySet[Session]) -> None:
    _set_baseline(modeladmin, request, queryset, baseline=True)


@admin.action(description="Unmark selected sessions as baseline", permissions=["edit_session"])
def unmark_baseline(modeladmin, request: HttpRequest, queryset: QuerySet[Session]) -> None:
    _set_baseline(modeladmin, request, queryset, baseline=False)


@admin.action(description="Move selected sessions to another episode…",
              permissions=["edit_session"])
def move_to_episode(modeladmin, request: HttpRequest, queryset: QuerySet[Session]):
    sessions = _sessions(queryset)
    projects = {s.project_id for s in sessions}
    if len(projects) != 1 or len(sessions) > MAX_MOVED:
        modeladmin.message_user(
            request,
            f"Move sessions of one project at a time, at most {MAX_MOVED}.",
            messages.ERROR,
        )
        return None
    form = MoveToEpisodeForm(
        request.POST if "apply" in request.POST else None,
        project_id=projects.pop(),
        may_add_episode=request.user.has_perm("metrics.add_episode"),
    )
    if form.is_bound and form.is_valid():
        _move(modeladmin, request, sessions, form)
        return None  # back to the changelist, with its filters
    return TemplateResponse(
        request,
        "admin/metrics/session/move_to_episode.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Move sessions to another episode",
            "opts": modeladmin.model._meta,
            "form": form,
            "sessions": sessions,
            "listed": sessions[:LISTED_ON_MOVE_PAGE],
            "unlisted": max(0, len(sessions) - LISTED_ON_MOVE_PAGE),
            "project": sessions[0].project,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": modeladmin.media,
        },
    )


def _move(modeladmin, request: HttpRequest, sessions: list[Session], form) -> None:
    with transaction.atomic():
        episode, created = form.target()
        if created:
            _log(request, [episode], [{"added": {}}], flag=ADDITION)
        moved = [s for s in sessions if s.episode_id != episode.pk]
        origins = {s.episode_id for s in moved}
        by_origin: dict[str, list[Session]] = defaultdict(list)
        for session in moved:
            by_origin[session.episode.code if session.episode_id else "(none)"].append(session)
        for session in moved:
            session.episode = episode
            session.mark_edited("episode")  # so a resend from the generator keeps the move
        Session.objects.bulk_update(moved, ["episode", "edited_fields"])
        refresh_latest_runs([episode.pk, *origins])
        for origin, group in by_origin.items():
            _log(request, group, f"Moved from episode {origin} to {episode.code}.")
        # Analysis moves each session's figures to the new episode's rollups.
        _analyze_after_commit(moved)
    modeladmin.message_user(
        request, f"Moved {len(moved)} session(s) to episode {episode.code}; re-analyzing them."
    )


@admin.action(description="Export selected sessions as CSV", permissions=["view"])
def export_csv(modeladmin, request: HttpRequest, queryset: QuerySet[Session]):
    return exports.csv_response(Session.objects.filter(pk__in=queryset.values("pk")))


@admin.action(description="Export selected sessions as schema-v1 JSON (for POST /api/v1/batch)",
              permissions=["view"])
def export_json(modeladmin, request: HttpRequest, queryset: QuerySet[Session]):
    return exports.json_response(Session.objects.filter(pk__in=queryset.values("pk")))


SESSION_ACTIONS = [
    rerun_analysis, mark_baseline, unmark_baseline, move_to_episode, export_csv, export_json,
]
