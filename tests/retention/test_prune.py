"""Retention removes raw operations and API calls of old sessions; their figures stay."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from metrics import retention
from metrics.analysis.analyze import analyze_session
from metrics.models import (
    ApiCall,
    CostLine,
    DailyCost,
    DailyOperation,
    EpisodeCost,
    EpisodeOperation,
    Finding,
    Operation,
    OperationStat,
    Project,
    Session,
)
from tests.factories import big_payload

pytestmark = pytest.mark.django_db

ROLLUPS = (DailyCost, EpisodeCost, DailyOperation, EpisodeOperation)
TOTALS = ("operations_count", "api_calls_count", "api_errors_count", "prompt_tokens",
          "completion_tokens", "total_tokens", "cost_usd", "duration_s")


def figures() -> dict:
    """Everything analysis derived from the raw rows, as comparable values."""
    def rows(model, *exclude):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]
        return sorted(model.objects.values_list(*fields), key=repr)
    return {
        "stats": rows(OperationStat, "id"),
        "cost_lines": rows(CostLine, "id"),
        "findings": rows(Finding, "id"),
        "totals": sorted(Session.objects.values_list("external_id", *TOTALS)),
        **{model.__name__: rows(model, "id") for model in ROLLUPS},
    }


def test_prune_removes_old_rows_and_keeps_every_figure(world, later):
    before = figures()
    assert Operation.objects.count() == 9 * 7 and ApiCall.objects.count() == 9 * 6

    result = retention.prune(now=later)

    assert (result.sessions, result.operations, result.api_calls) == (9, 63, 54)
    assert Operation.objects.count() == 0 and ApiCall.objects.count() == 0
    assert not Session.objects.filter(detail_pruned_at__isnull=True).exists()
    assert figures() == before


def test_reanalysis_of_a_pruned_session_keeps_its_figures(world, later):
    before = figures()
    retention.prune(now=later)

    for session in Session.objects.all():
        analyze_session(session)

    assert figures() == before
    assert Session.objects.get(external_id="ep001_run1").analyzed_at is not None


def test_baseline_pinned_recent_and_unanalyzed_sessions_are_kept_whole(world, later):
    Session.objects.filter(external_id="ep001_run1").update(is_baseline=True)
    Session.objects.filter(external_id="ep001_run2").update(is_pinned=True)
    # merged after its analysis: its figures are not final, so its rows stay for now
    Session.objects.filter(external_id="ep001_run3").update(analyzed_at=None)

    result = retention.prune(now=later)

    assert result.sessions == 6
    kept = {"ep001_run1", "ep001_run2", "ep001_run3"}
    for session in Session.objects.all():
        has_rows = session.operations.exists() and session.api_calls.exists()
        assert has_rows == (session.external_id in kept), session.external_id
        assert (session.detail_pruned_at is None) == (session.external_id in kept)
    assert retention.prune(now=datetime.now(UTC)).sessions == 0  # nothing 90 days old yet


def test_project_period_overrides_the_setting_and_zero_keeps_everything(world, later, project):
    project.retention_days = 0
    project.save()
    assert retention.prune(now=later).sessions == 0

    project.retention_days = 200  # the runs are about 100 days old on that clock
    project.save()
    assert retention.prune(now=later).sessions == 0
    assert retention.prune(now=later + timedelta(days=101)).sessions == 9


@override_settings(RETENTION_DAYS=0)
def test_retention_days_zero_keeps_everything(world, later):
    assert retention.prune(now=later).sessions == 0
    assert Operation.objects.count() == 63


def test_small_batches_delete_parents_before_their_children(api, later):
    """Children may sit in a later primary-key range than their parent: links are cut."""
    api.post("/sessions", big_payload("big", operations=60, api_calls=25))
    analyze_session(Session.objects.get())
    stats = list(OperationStat.objects.values_list("name", "occurrences"))

    result = retention.prune(now=later + timedelta(days=3650), batch_size=7)

    assert (result.operations, result.api_calls) == (60, 25)
    assert Operation.objects.count() == 0
    assert list(OperationStat.objects.values_list("name", "occurrences")) == stats


def test_prune_command_dry_run_counts_and_deletes_nothing(world):
    out = StringIO()
    call_command("prune", "--older-than", "1d", "--dry-run", stdout=out)
    # the world's runs started 2 to 6 days ago: those older than one day
    old = Session.objects.filter(started_at__lt=datetime.now(UTC) - timedelta(days=1))
    n = old.count()
    assert n > 0
    assert f"Would prune {n} sessions: {n * 7} operations, {n * 6} API calls." in out.getvalue()
    assert Operation.objects.count() == 63


def test_prune_command_prints_progress_and_filters_by_project(world, other_project):
    out = StringIO()
    call_command("prune", "--older-than", "1d", "--project", other_project.slug, stdout=out)
    assert "Pruned 0 sessions" in out.getvalue()
    assert Operation.objects.count() == 63

    call_command("prune", "--older-than", "1d", "--project", "default", stdout=out)
    pruned = Session.objects.filter(detail_pruned_at__isnull=False).count()
    assert pruned > 0
    assert f"default: pruned {pruned} sessions so far" in out.getvalue()
    assert Operation.objects.count() == 63 - 7 * pruned


def test_prune_command_refuses_bad_arguments(db):
    with pytest.raises(CommandError, match="takes days"):
        call_command("prune", "--older-than", "3 weeks")
    with pytest.raises(CommandError, match="no project"):
        call_command("prune", "--project", "nope")
    with pytest.raises(CommandError, match="prune everything"):
        call_command("prune", "--older-than", "0d")


def test_periodic_task_uses_each_projects_period(world, project):
    from metrics.tasks import prune_raw_rows

    project.retention_days = 1
    project.save()
    assert prune_raw_rows() == Session.objects.filter(detail_pruned_at__isnull=False).count() > 0
    assert Project.objects.get(pk=project.pk).retention_days == 1
