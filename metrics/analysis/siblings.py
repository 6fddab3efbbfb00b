"""Judgements that depend on other sessions, kept true whatever order sessions arrive in.

Two judgements of a session read its siblings: a ``reruns_only`` budget applies when the
episode ran before (budgets.is_rerun), and regressions compare against the workflow's
marked baseline or its previous completed runs (regressions.baseline_for). When a session
is stored, re-sent with another start, or analyzed for the first time, the siblings whose
judgement could read it are judged again, each in its own transaction under its row lock,
after the session's own analysis committed: so the result is the same as if every session
had arrived in start order.
"""

from django.conf import settings
from django.db import transaction

from metrics.analysis import budgets, regressions, rollups
from metrics.models import Regression, Session


def affected_siblings(session: Session) -> list[int]:
    """Analyzed sessions whose budget checks or regressions may read this session."""
    finished = Session.objects.filter(project_id=session.project_id,
                                      analyzed_at__isnull=False).exclude(pk=session.pk)
    pks: set[int] = set()
    if session.episode_id is not None:  # is it before them now (a re-run), or not?
        pks.update(finished.filter(episode_id=session.episode_id).values_list("pk", flat=True))
    if session.workflow:
        same_workflow = finished.filter(workflow=session.workflow,
                                        status__in=Session.FINISHED)
        if session.is_baseline:
            pks.update(same_workflow.values_list("pk", flat=True))
        else:  # the next runs, whose "previous runs" baseline may hold this one
            pks.update(same_workflow.filter(started_at__gte=session.started_at)
                       .order_by("started_at", "pk")
                       .values_list("pk", flat=True)[: settings.REGRESSION_PREVIOUS_SESSIONS])
        pks.update(_compared_against(session))
    return sorted(pks)


def _compared_against(session: Session) -> set[int]:
    """Sessions with a regression measured against this one (it may have moved since).

    Regressions are few (only what was flagged), so their baseline lists are read here
    rather than searched inside JSON, which SQLite cannot do."""
    rows = Regression.objects.filter(
        session__project_id=session.project_id, session__workflow=session.workflow,
    ).exclude(session_id=session.pk).values_list("session_id", "baseline_sessions")
    return {pk for pk, compared in rows if session.external_id in compared}


def rejudge(session_pk: int) -> None:
    """Check one session's budgets and find its regressions again, as analysis does."""
    with transaction.atomic():
        rollups.hold_analysis_lock()
        session = (Session.objects.select_for_update(of=("self",)).select_related("episode")
                   .filter(pk=session_pk, analyzed_at__isnull=False).first())
        if session is None:  # deleted, or not analyzed yet (its own analysis will judge it)
            return
        budgets.check_budgets(session)
        Regression.objects.filter(session=session).delete()
        Regression.objects.bulk_create(regressions.find_regressions(session))


def rejudge_siblings(session: Session) -> int:
    """Judge again every sibling this session's arrival may have changed; how many."""
    pks = affected_siblings(session)
    for pk in pks:
        rejudge(pk)
    return len(pks)
